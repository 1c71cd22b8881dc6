"""Store platforms: how a webhook delivery from Shopify, WooCommerce, YouCan or a custom source is
verified, keyed and read. One small interface, one module per platform, registered by name.

An adapter does no I/O and touches no database: it checks a signature over the raw body, names
the delivery's idempotency key and topic, and turns a parsed payload into ``StoreAction`` values.
What those actions do to orders is ``orders.services.ingest``'s business, the same for every
platform. Wire formats: /work/shared/reference/stores.md.
"""

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol


class UnknownTopic(Exception):
    """The platform sent a topic Livra does not handle: the delivery is kept and flagged."""


class MalformedPayload(Exception):
    """The payload is not what the platform documents for its topic: kept and flagged, with why."""


class PingDelivery(Exception):
    """Not an event but the platform checking the URL (WooCommerce's ``webhook_id`` ping): 200."""


@dataclass(frozen=True)
class ConsentClaim:
    """What checkout said about messages on one channel; recorded with its evidence."""

    channel: str  # "whatsapp", "sms", "email"
    subscribed: bool  # True: opted in to marketing; False: said no to marketing
    field: str  # where it was read, e.g. "buyer_accepts_marketing" or "note_attributes.whatsapp_opt_in"
    value: str  # the value as sent, for the evidence


@dataclass(frozen=True)
class IncomingCustomer:
    name: str
    phone: str = ""  # as typed by the buyer; normalised with the store's region by the service
    email: str = ""
    language: str = ""  # "en", "fr", "ar" when the platform says; empty otherwise
    consents: tuple[ConsentClaim, ...] = ()


@dataclass(frozen=True)
class IncomingItem:
    title: str
    quantity: int
    unit_price: Decimal
    sku: str = ""


@dataclass(frozen=True)
class IncomingOrder:
    """An order as the platform describes it, in Livra's terms."""

    external_id: str
    number: str
    payment_method: str  # orders.transitions.PaymentMethod value: "cod" or "prepaid"
    paid: bool  # money already taken (prepaid and paid); False for COD and unpaid prepaid orders
    currency: str
    total_amount: Decimal
    cod_amount: Decimal  # what the courier collects; 0 for prepaid
    customer: IncomingCustomer
    placed_at: datetime
    updated_at: datetime | None  # the platform's updated_at: older updates change nothing
    items: tuple[IncomingItem, ...] = ()
    shipping_address: str = ""
    shipping_city: str = ""
    notes: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class IncomingShipment:
    carrier: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    external_id: str = ""  # e.g. the Shopify fulfillment id
    # The platform's shipment status word for word ("in_transit", "delivered", …); "" if none.
    status: str = ""


@dataclass(frozen=True)
class StoreAction:
    """One thing a delivery says happened to an order.

    kinds:
    - ``upsert``: ``order`` is set; create the order if Livra does not have it, else update it
      when ``order.updated_at`` is newer than what Livra has.
    - ``cancel``: the store cancelled the order (``reason``).
    - ``paid``: the store recorded the payment (prepaid paid later, or COD cash collected).
    - ``shipment``: ``shipment`` is set; record it, and move the order to shipped (or further,
      by ``shipment.status``).
    - ``refund``: the store refunded the order (``reason``).
    - ``flag``: something Livra does not map (an unknown platform status…): keep it, surface it
      (``reason`` says what), change nothing.

    Every action names the order by ``external_id``; ``updated_at`` is the platform's time for
    this fact when it has one.
    """

    kind: str
    external_id: str
    order: IncomingOrder | None = None
    shipment: IncomingShipment | None = None
    reason: str = ""
    updated_at: datetime | None = None
    detail: dict = field(default_factory=dict)


class StorePlatform(Protocol):
    name: str  # the URL segment: /webhooks/<name>/<store-slug>/
    # The request headers worth keeping with the raw body (never the signature).
    kept_headers: tuple[str, ...]

    def verify(self, request, store, *, now: datetime) -> bool:
        """Is the delivery signed by this store? Constant-time compare over ``request.body``.

        Raise ``PingDelivery`` for a platform's URL check that carries no event.
        """

    def idempotency_key(self, request) -> str:
        """The platform's id for this event (the same across its re-deliveries)."""

    def topic(self, request) -> str:
        """e.g. ``orders/create`` (Shopify) or ``order.created`` (WooCommerce); may be ""."""

    def parse(self, topic: str, payload, store) -> list[StoreAction]:
        """What the delivery says, as actions; raise UnknownTopic or MalformedPayload."""


_registry: dict[str, StorePlatform] = {}


def register(platform: StorePlatform) -> StorePlatform:
    _registry[platform.name] = platform
    return platform


def get_platform(name: str) -> StorePlatform:
    _load_builtin()
    return _registry[name]


def platform_names() -> list[str]:
    _load_builtin()
    return sorted(_registry)


def _load_builtin() -> None:
    from orders.platforms import generic, shopify, woocommerce, youcan  # noqa: F401 - they register


# --- shared helpers -----------------------------------------------------------------------------
def hmac_sha256(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def signature_matches(expected: str, given: str) -> bool:
    """Constant-time comparison of two signature strings (a missing one never matches)."""
    return bool(given) and hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "replace"))


def signed_with_store_secret(store, now: datetime, given: str, signature_for) -> bool:
    """Does ``given`` equal ``signature_for(secret)`` for one of the store's webhook secrets that
    verify at ``now``? Every secret is tried (no early exit), so the time taken does not say which
    one matched."""
    matches = [
        signature_matches(signature_for(secret), given) for secret in store_secrets(store, now) if secret
    ]
    return any(matches)


def store_secrets(store, now: datetime | None = None) -> list[str]:
    """The store's Livra-made webhook secrets that verify at ``now``: the current one, and the
    previous one during the grace period after a rotation (``orders.services.stores``)."""
    from orders.services.stores import webhook_secrets_accepted

    return webhook_secrets_accepted(store, now)
