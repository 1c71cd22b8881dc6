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
from decimal import Decimal
from functools import partial

from orders.platforms import (
    ConsentClaim,
    IncomingCustomer,
    IncomingItem,
    IncomingOrder,
    IncomingShipment,
    MalformedPayload,
    StoreAction,
    UnknownTopic,
    fields,
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

LANGUAGES = frozenset({"en", "fr", "ar"})

# Shopify's text fields are strings (ids and counts whole numbers); any other JSON value reads as "".
_text = partial(fields.text, strict=True)
# Shopify's amounts are taken with their sign as sent: a negative one is not refused here.
_money = partial(fields.money, resource="order")


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
    external_id = fields.identifier(payload.get("id"), "id", resource="order")
    # current_quantity and current_total_price follow order edits (an item dropped on the
    # confirmation call): what to ship and collect now. An order with nothing left (cancelled or
    # refunded in full) keeps what was placed, for the record. Older API versions send neither.
    items_now = _items(payload, current=True)
    as_it_stands = bool(items_now) and payload.get("current_total_price") is not None
    items = items_now if as_it_stands else _items(payload, current=False)
    placed_total = _money(payload.get("total_price"), "total_price")
    total = (
        _money(payload.get("current_total_price"), "current_total_price") if as_it_stands else placed_total
    )
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
        placed_at=fields.date_time(
            payload.get("created_at"), "created_at", naive_zone=store.time_zone, resource="order"
        ),
        updated_at=_optional_datetime(payload, "updated_at", store),
        items=items,
        shipping_address=fields.joined_text(
            _address(payload).get("address1"), _address(payload).get("address2"), separator=", ", strict=True
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
        raise MalformedPayload(f"order 'payment_gateway_names' is {fields.json_type(gateways)}, not an array")
    gateways = [*gateways, payload.get("gateway")]
    names = [name.strip().lower() for name in store.cod_gateway_names or [] if isinstance(name, str)]
    patterns = [re.compile(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])") for name in names if name]
    return any(pattern.search(_text(gateway).lower()) for gateway in gateways for pattern in patterns)


def _items(payload: dict, *, current: bool) -> tuple[IncomingItem, ...]:
    line_items = fields.object_array(payload.get("line_items"), "line_items", required=True, resource="order")
    items = []
    for index, line in enumerate(line_items):
        where = f"line_items[{index}]"
        key = "current_quantity" if current and "current_quantity" in line else "quantity"
        quantity = fields.whole_number(line.get(key), f"{where}.{key}", resource="order")
        if quantity == 0:
            continue
        items.append(
            IncomingItem(
                title=fields.first_text(line.get("title"), line.get("name"), strict=True),
                quantity=quantity,
                unit_price=_money(line.get("price"), f"{where}.price"),
                sku=_text(line.get("sku")),
            )
        )
    return tuple(items)


def _tags(value) -> tuple[str, ...]:
    parts = value if isinstance(value, list) else _text(value).split(",")
    return tuple(tag for tag in (_text(part) for part in parts) if tag)


# --- customer -----------------------------------------------------------------------------------
def _customer(payload: dict) -> IncomingCustomer:
    customer = fields.json_object(payload.get("customer"), "customer", resource="order")
    shipping = _address(payload)
    billing = fields.json_object(payload.get("billing_address"), "billing_address", resource="order")
    return IncomingCustomer(
        name=_person_name(customer) or _person_name(shipping) or _person_name(billing),
        phone=fields.first_text(
            payload.get("phone"),
            shipping.get("phone"),
            customer.get("phone"),
            billing.get("phone"),
            strict=True,
        ),
        email=fields.first_text(
            payload.get("email"), payload.get("contact_email"), customer.get("email"), strict=True
        ),
        language=_language(payload.get("customer_locale")),
        consents=_consents(payload, customer),
    )


def _person_name(record: dict) -> str:
    return fields.full_name(record, strict=True) or _text(record.get("name"))


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
        consent = fields.json_object(customer.get(key), f"customer.{key}", resource="order")
        state = _text(consent.get("state")).lower()
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
        answer = fields.yes_or_no(value)
        if answer is not None:
            claims.append(ConsentClaim("whatsapp", answer, f"note_attributes.{name}", value))
    return tuple(claims)


# --- fulfillments and refunds ---------------------------------------------------------------------
def _fulfillment_action(payload: dict, store) -> StoreAction:
    order_id = fields.identifier(payload.get("order_id"), "order_id", resource="fulfillment")
    fulfillment_id = fields.identifier(payload.get("id"), "id", resource="fulfillment")
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
    order_id = fields.identifier(payload.get("order_id"), "order_id", resource="refund")
    refund_id = fields.identifier(payload.get("id"), "id", resource="refund")
    transactions = fields.object_array(payload.get("transactions") or [], "transactions", resource="refund")
    refunded = Decimal("0")
    currency = ""
    for index, transaction in enumerate(transactions):
        if transaction.get("kind") == "refund" and transaction.get("status") == "success":
            refunded += _money(transaction.get("amount"), f"transactions[{index}].amount", resource="refund")
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
        raise MalformedPayload(
            f"a Shopify {what} payload must be a JSON object, not {fields.json_type(payload)}"
        )
    return payload


def _optional_datetime(payload: dict, key: str, store, *, what: str = "order") -> datetime | None:
    # Shopify always sends an offset; a bare time is read in the store's zone rather than guessed.
    return fields.optional_date_time(payload.get(key), key, naive_zone=store.time_zone, resource=what)


def _address(payload: dict) -> dict:
    return fields.json_object(payload.get("shipping_address"), "shipping_address", resource="order")


def _strings(payload: dict, key: str) -> list[str]:
    values = payload.get(key) or []
    return [text for text in (_text(value) for value in values) if text] if isinstance(values, list) else []


def _bare_domain(value: str) -> str:
    domain = value.strip().lower().removeprefix("https://").removeprefix("http://")
    return domain.rstrip("/")
