"""Shopify: webhooks signed with the shop's secret, one subscription per topic.

Wire format (/work/shared/reference/stores.md, "Shopify"; shopify.dev webhooks reference):
- ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body keyed with the app's client
  secret (a custom app's webhook signing secret), kept on the store as ``platform_secret``.
- ``X-Shopify-Event-Id`` is the same across duplicate deliveries of one event,
  ``X-Shopify-Webhook-Id`` across the retries of one delivery: the event id is the better key.
- ``orders/*`` topics carry the Order resource, ``fulfillments/*`` a Fulfillment (with
  ``order_id``), ``refunds/create`` a Refund (with ``order_id``).

COD detection ("Shopify COD detection" in stores.md): a gateway in ``payment_gateway_names`` (or
the older ``gateway``) that names one of the store's ``cod_gateway_names``. ``financial_status``
"pending" alone says nothing: a bank transfer waiting for its money looks the same.
"""

import base64
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from orders.platforms import (
    ConsentClaim,
    IncomingCustomer,
    IncomingItem,
    IncomingOrder,
    IncomingShipment,
    MalformedPayload,
    StoreAction,
    UnknownTopic,
    hmac_sha256,
    register,
    signature_matches,
)

TOPIC_HEADER = "X-Shopify-Topic"
SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
SHOP_DOMAIN_HEADER = "X-Shopify-Shop-Domain"
API_VERSION_HEADER = "X-Shopify-API-Version"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
EVENT_ID_HEADER = "X-Shopify-Event-Id"
TRIGGERED_AT_HEADER = "X-Shopify-Triggered-At"

ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/cancelled", "orders/paid"})
FULFILLMENT_TOPICS = frozenset({"fulfillments/create", "fulfillments/update"})
REFUND_TOPIC = "refunds/create"

# financial_status values meaning the money is taken. "authorized" is not captured yet (it can still
# be voided) and "partially_paid" is not the whole amount, so neither counts as paid.
PAID_FINANCIAL_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})

# Fulfillment.status values for which nothing left the warehouse: never a reason to mark shipped.
UNSHIPPED_FULFILLMENT_STATUSES = frozenset({"cancelled", "error", "failure"})

# customer.{email,sms}_marketing_consent.state. "pending" (double opt-in not confirmed yet),
# "redacted" and "invalid" say neither yes nor no, so they claim nothing.
MARKETING_CONSENT_STATES = {"subscribed": True, "unsubscribed": False, "not_subscribed": False}

# Checkout apps and theme fields that ask for WhatsApp put the answer in a note attribute; the
# common names, once lower-cased with spaces and dashes as underscores.
WHATSAPP_CONSENT_ATTRIBUTE = re.compile(r"^whats_?app_(opt_?in|consent|subscribed?|marketing)$")
YES_WORDS = frozenset({"yes", "y", "true", "1", "on", "oui", "نعم"})
NO_WORDS = frozenset({"no", "n", "false", "0", "off", "non", "لا"})

LANGUAGES = frozenset({"en", "fr", "ar"})

_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    type(None): "null",
}


class ShopifyPlatform:
    name = "shopify"
    kept_headers = (
        TOPIC_HEADER,
        SHOP_DOMAIN_HEADER,
        API_VERSION_HEADER,
        WEBHOOK_ID_HEADER,
        EVENT_ID_HEADER,
        TRIGGERED_AT_HEADER,
    )

    def verify(self, request, store, *, now: datetime) -> bool:
        # ``now`` goes unused: Shopify signs no timestamp. A replayed delivery is a duplicate (same
        # event id) or an old one, which ingest ignores by the payload's updated_at.
        if not store.platform_secret:
            return False
        if store.shop_domain and _bare_domain(request.headers.get(SHOP_DOMAIN_HEADER, "")) != _bare_domain(
            store.shop_domain
        ):
            return False
        expected = base64.b64encode(hmac_sha256(store.platform_secret, request.body)).decode()
        return signature_matches(expected, request.headers.get(SIGNATURE_HEADER, ""))

    def idempotency_key(self, request) -> str:
        for header in (EVENT_ID_HEADER, WEBHOOK_ID_HEADER):
            if value := request.headers.get(header, "").strip():
                return value
        return ""

    def topic(self, request) -> str:
        return request.headers.get(TOPIC_HEADER, "").strip()

    def parse(self, topic: str, payload, store) -> list[StoreAction]:
        if topic in ORDER_TOPICS:
            return _order_actions(topic, _object(payload, "order"), store)
        if topic in FULFILLMENT_TOPICS:
            return [_fulfillment_action(_object(payload, "fulfillment"), store)]
        if topic == REFUND_TOPIC:
            return [_refund_action(_object(payload, "refund"), store)]
        raise UnknownTopic(f"Shopify topic {topic!r} is not one Livra handles")


platform = register(ShopifyPlatform())


# --- orders -------------------------------------------------------------------------------------
def _order_actions(topic: str, payload: dict, store) -> list[StoreAction]:
    order = incoming_order(payload, store)
    actions = [StoreAction("upsert", order.external_id, order=order, updated_at=order.updated_at)]
    if topic == "orders/cancelled" or (topic == "orders/updated" and payload.get("cancelled_at")):
        cancelled_at = _optional_datetime(payload, "cancelled_at", store)
        actions.append(
            StoreAction(
                "cancel",
                order.external_id,
                reason=_text(payload.get("cancel_reason")),
                updated_at=cancelled_at or order.updated_at,
            )
        )
    elif topic == "orders/paid":
        actions.append(StoreAction("paid", order.external_id, updated_at=order.updated_at))
    return actions


def incoming_order(payload: dict, store) -> IncomingOrder:
    """A Shopify Order resource (webhook or Admin REST API) in Livra's terms."""
    external_id = _id(payload, "id")
    # current_quantity and current_total_price follow order edits (an item dropped on the
    # confirmation call): what to ship and collect now. An order with nothing left (cancelled or
    # refunded in full) keeps what was placed, for the record. Older API versions send neither.
    items_now = _items(payload, current=True)
    as_it_stands = bool(items_now) and payload.get("current_total_price") is not None
    items = items_now if as_it_stands else _items(payload, current=False)
    placed_total = _money(payload, "total_price", required=True)
    total = _money(payload, "current_total_price", required=True) if as_it_stands else placed_total
    cod = is_cod(payload, store)
    return IncomingOrder(
        external_id=external_id,
        number=_text(payload.get("name")) or f"#{_text(payload.get('order_number')) or external_id}",
        payment_method="cod" if cod else "prepaid",
        paid=not cod and _text(payload.get("financial_status")).lower() in PAID_FINANCIAL_STATUSES,
        currency=_text(payload.get("currency")) or store.currency,
        total_amount=total,
        cod_amount=total if cod else Decimal("0"),
        customer=_customer(payload),
        placed_at=_datetime(payload, "created_at", store),
        updated_at=_optional_datetime(payload, "updated_at", store),
        items=items,
        shipping_address=", ".join(
            part for part in (_text(_address(payload).get(k)) for k in ("address1", "address2")) if part
        ),
        shipping_city=_text(_address(payload).get("city")),
        notes=_text(payload.get("note")),
        tags=_tags(payload.get("tags")),
    )


def is_cod(payload: dict, store) -> bool:
    """Does a payment gateway of the order name one of the store's cash-on-delivery gateways?

    A name matches as whole words, case-insensitively: "cod" finds "Cash on Delivery (COD)" and
    "COD - Zecpe" but not "Pay by QR code", which a plain substring test would take for COD.
    """
    gateways = payload.get("payment_gateway_names") or []
    if not isinstance(gateways, list):
        raise MalformedPayload(f"order 'payment_gateway_names' is {_type_name(gateways)}, not an array")
    gateways = [*gateways, payload.get("gateway")]
    names = [name.strip().lower() for name in store.cod_gateway_names or [] if isinstance(name, str)]
    patterns = [re.compile(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])") for name in names if name]
    return any(pattern.search(_text(gateway).lower()) for gateway in gateways for pattern in patterns)


def _items(payload: dict, *, current: bool) -> tuple[IncomingItem, ...]:
    line_items = payload.get("line_items")
    if not isinstance(line_items, list):
        raise MalformedPayload(f"order 'line_items' is {_type_name(line_items)}, not an array")
    items = []
    for index, line in enumerate(line_items):
        where = f"line_items[{index}]"
        if not isinstance(line, dict):
            raise MalformedPayload(f"order '{where}' is {_type_name(line)}, not an object")
        key = "current_quantity" if current and "current_quantity" in line else "quantity"
        quantity = line.get(key)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise MalformedPayload(f"order '{where}.{key}' is not a whole number: {quantity!r:.40}")
        if quantity == 0:
            continue
        items.append(
            IncomingItem(
                title=_text(line.get("title")) or _text(line.get("name")),
                quantity=quantity,
                unit_price=_money(line, "price", required=True, where=where),
                sku=_text(line.get("sku")),
            )
        )
    return tuple(items)


def _tags(value) -> tuple[str, ...]:
    parts = value if isinstance(value, list) else _text(value).split(",")
    return tuple(tag for tag in (_text(part) for part in parts) if tag)


# --- customer -----------------------------------------------------------------------------------
def _customer(payload: dict) -> IncomingCustomer:
    customer = _nested(payload, "customer")
    shipping = _address(payload)
    billing = _nested(payload, "billing_address")
    return IncomingCustomer(
        name=_person_name(customer) or _person_name(shipping) or _person_name(billing),
        phone=_first(
            payload.get("phone"), shipping.get("phone"), customer.get("phone"), billing.get("phone")
        ),
        email=_first(payload.get("email"), payload.get("contact_email"), customer.get("email")),
        language=_language(payload.get("customer_locale")),
        consents=_consents(payload, customer),
    )


def _person_name(record: dict) -> str:
    joined = " ".join(
        part for part in (_text(record.get("first_name")), _text(record.get("last_name"))) if part
    )
    return joined or _text(record.get("name"))


def _language(locale) -> str:
    # "fr", "fr-MA", "ar", "en-US": the language is what precedes the region.
    language = _text(locale).lower().replace("_", "-").split("-")[0]
    return language if language in LANGUAGES else ""


def _consents(payload: dict, customer: dict) -> tuple[ConsentClaim, ...]:
    claims = []
    accepts = payload.get("buyer_accepts_marketing")
    if isinstance(accepts, bool):
        claims.append(ConsentClaim("email", accepts, "buyer_accepts_marketing", str(accepts).lower()))
    for channel in ("email", "sms"):
        key = f"{channel}_marketing_consent"
        state = _text(_nested(customer, key, where="customer.").get("state")).lower()
        if state in MARKETING_CONSENT_STATES:
            claims.append(
                ConsentClaim(channel, MARKETING_CONSENT_STATES[state], f"customer.{key}.state", state)
            )
    attributes = payload.get("note_attributes") or []
    for attribute in attributes if isinstance(attributes, list) else []:
        if not isinstance(attribute, dict):
            continue
        name = _text(attribute.get("name"))
        if not WHATSAPP_CONSENT_ATTRIBUTE.match(re.sub(r"[\s-]+", "_", name.lower())):
            continue
        value = _text(attribute.get("value"))
        answer = True if value.lower() in YES_WORDS else False if value.lower() in NO_WORDS else None
        if answer is not None:
            claims.append(ConsentClaim("whatsapp", answer, f"note_attributes.{name}", value))
    return tuple(claims)


# --- fulfillments and refunds ---------------------------------------------------------------------
def _fulfillment_action(payload: dict, store) -> StoreAction:
    order_id = _id(payload, "order_id", what="fulfillment")
    fulfillment_id = _id(payload, "id", what="fulfillment")
    tracking_numbers = _strings(payload, "tracking_numbers")
    tracking_urls = _strings(payload, "tracking_urls")
    status = _text(payload.get("status")).lower()
    updated_at = _optional_datetime(payload, "updated_at", store, what="fulfillment")
    detail = {
        "fulfillment_id": fulfillment_id,
        "fulfillment_status": status,
        "tracking_numbers": tracking_numbers,
    }
    if status in UNSHIPPED_FULFILLMENT_STATUSES:
        # A fulfillments/update saying the fulfillment was cancelled: nothing is on its way.
        return StoreAction(
            "flag",
            order_id,
            reason=f"Shopify fulfillment {fulfillment_id} is {status}: nothing shipped",
            updated_at=updated_at,
            detail=detail,
        )
    shipment = IncomingShipment(
        carrier=_text(payload.get("tracking_company")),
        tracking_number=_text(payload.get("tracking_number")) or next(iter(tracking_numbers), ""),
        tracking_url=_text(payload.get("tracking_url")) or next(iter(tracking_urls), ""),
        external_id=fulfillment_id,
        status=_text(payload.get("shipment_status")),
    )
    return StoreAction("shipment", order_id, shipment=shipment, updated_at=updated_at, detail=detail)


def _refund_action(payload: dict, store) -> StoreAction:
    order_id = _id(payload, "order_id", what="refund")
    refund_id = _id(payload, "id", what="refund")
    transactions = payload.get("transactions") or []
    if not isinstance(transactions, list):
        raise MalformedPayload(f"refund 'transactions' is {_type_name(transactions)}, not an array")
    refunded = Decimal("0")
    currency = ""
    for index, transaction in enumerate(transactions):
        if not isinstance(transaction, dict):
            raise MalformedPayload(
                f"refund 'transactions[{index}]' is {_type_name(transaction)}, not an object"
            )
        if transaction.get("kind") == "refund" and transaction.get("status") == "success":
            refunded += _money(
                transaction, "amount", required=True, where=f"transactions[{index}]", what="refund"
            )
            currency = currency or _text(transaction.get("currency"))
    when = _optional_datetime(payload, "processed_at", store, what="refund") or _optional_datetime(
        payload, "created_at", store, what="refund"
    )
    detail = {"refund_id": refund_id, "amount": str(refunded), "currency": currency}
    if not refunded:
        # Restocking a returned parcel, or editing an unpaid COD order, makes a refund that moves no
        # money: the order was not refunded.
        return StoreAction(
            "flag",
            order_id,
            reason=f"Shopify refund {refund_id} moved no money (a restock or an order edit)",
            updated_at=when,
            detail=detail,
        )
    return StoreAction("refund", order_id, reason=_text(payload.get("note")), updated_at=when, detail=detail)


# --- reading fields -----------------------------------------------------------------------------
def _object(payload, what: str) -> dict:
    if not isinstance(payload, dict):
        raise MalformedPayload(f"a Shopify {what} payload must be a JSON object, not {_type_name(payload)}")
    return payload


def _id(payload: dict, key: str, *, what: str = "order") -> str:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise MalformedPayload(f"{what} '{key}' is missing or not an id: {value!r:.40}")
    return str(value).strip()


def _money(payload: dict, key: str, *, required: bool = False, where: str = "", what: str = "order"):
    """A Decimal from Shopify's money string (a JSON number is read through its text, never as float)."""
    field = f"{where}.{key}" if where else key
    value = payload.get(key)
    if value is None and not required:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidOperation
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise MalformedPayload(f"{what} '{field}' is not an amount of money: {value!r:.40}") from None
    if not amount.is_finite():
        raise MalformedPayload(f"{what} '{field}' is not an amount of money: {value!r:.40}")
    return amount


def _datetime(payload: dict, key: str, store, *, what: str = "order") -> datetime:
    value = payload.get(key)
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise MalformedPayload(f"{what} '{key}' is missing or not an ISO 8601 date and time: {value!r:.40}")
    # Shopify always sends an offset; a bare time is read in the store's zone rather than guessed.
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, store.time_zone)


def _optional_datetime(payload: dict, key: str, store, *, what: str = "order") -> datetime | None:
    return None if payload.get(key) in (None, "") else _datetime(payload, key, store, what=what)


def _nested(record: dict, key: str, *, where: str = "") -> dict:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"order '{where}{key}' is {_type_name(value)}, not an object")
    return value


def _address(payload: dict) -> dict:
    return _nested(payload, "shipping_address")


def _strings(payload: dict, key: str) -> list[str]:
    values = payload.get(key) or []
    return [text for text in (_text(value) for value in values) if text] if isinstance(values, list) else []


def _text(value) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _first(*values) -> str:
    return next((text for text in map(_text, values) if text), "")


def _bare_domain(value: str) -> str:
    domain = value.strip().lower().removeprefix("https://").removeprefix("http://")
    return domain.rstrip("/")


def _type_name(value) -> str:
    return _JSON_TYPE_NAMES.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
