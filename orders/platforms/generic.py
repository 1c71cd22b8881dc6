"""Livra's own signed JSON webhook, for custom stores and any source without a platform adapter.

Endpoint: ``POST /webhooks/generic/<store-slug>/`` with a JSON body and these headers:

==================  ===========================================================================
X-Livra-Topic       ``order.created``, ``order.updated``, ``order.cancelled`` or ``order.shipped``
X-Livra-Event-Id    the sender's id for this event, the same on every retry of it (required:
                    without it Livra keys the delivery by the body's hash)
X-Livra-Timestamp   when the sender signed, in Unix seconds
X-Livra-Signature   lowercase hex HMAC-SHA256, keyed with the store's Livra webhook secret, of
                    ``<timestamp> + "." + <raw body>``
==================  ===========================================================================

A delivery whose timestamp is more than ``REPLAY_WINDOW`` (5 minutes) from Livra's clock, in
either direction, is refused, so a captured delivery cannot be replayed later. During the grace
period after a secret rotation the previous secret verifies too.

Signing, in Python::

    timestamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()

Bodies. ``order.created`` and ``order.updated`` carry the whole order::

    {
      "id": "A-1042",                       # required: the order's id in the sending system
      "number": "#1042",                    # required: what the customer sees
      "payment_method": "cod",              # required: "cod" or "prepaid"
      "paid": false,                        # required: money taken (see below)
      "currency": "MAD",                    # required: ISO 4217
      "total_amount": "479.00",             # required: decimal string (or JSON number), >= 0
      "cod_amount": "479.00",               # COD only, <= total_amount; default total_amount
      "placed_at": "2025-06-10T14:32:07+01:00",   # required: ISO 8601 with offset
      "updated_at": "2025-06-10T14:32:09+01:00",  # required: older updates change nothing
      "customer": {
        "name": "Salma El Idrissi",         # required
        "phone": "0612345678",              # as typed; read with the store's phone region
        "email": "salma@example.com",
        "language": "fr",                   # "en", "fr", "ar" or ""
        "consents": [{"channel": "whatsapp", "subscribed": true}]   # whatsapp, sms, email
      },
      "items": [{"title": "Caftan", "quantity": 1, "unit_price": "349.00", "sku": "CAF-M"}],
      "shipping_address": "12 Rue Ibn Battouta", "shipping_city": "Casablanca",
      "notes": "", "tags": ["instagram"]
    }

``paid``: for a prepaid order, the payment was taken (the order is upserted paid, and an
``order.updated`` also gives a ``paid`` action, for a payment taken after creation); for a COD
order, the courier's cash was collected (a ``paid`` action).

``order.cancelled``: ``{"id", "reason"?, "updated_at"?}`` → ``cancel``.
``order.shipped``: ``{"id", "updated_at"?, "shipment": {"carrier", "tracking_number",
"tracking_url"?, "id"?, "status"?}}`` → ``shipment``.

Validation is strict: a missing or mistyped field raises ``MalformedPayload`` naming it (the
delivery is kept and flagged). Fields not listed here are ignored, so senders may add their own.
"""

import re
from datetime import datetime, timedelta
from decimal import Decimal

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
    signed_with_store_secret,
)
from orders.transitions import PaymentMethod

TOPIC_HEADER = "X-Livra-Topic"
EVENT_ID_HEADER = "X-Livra-Event-Id"
TIMESTAMP_HEADER = "X-Livra-Timestamp"
SIGNATURE_HEADER = "X-Livra-Signature"
REPLAY_WINDOW = timedelta(minutes=5)

ORDER_TOPICS = ("order.created", "order.updated")
CANCELLED_TOPIC = "order.cancelled"
SHIPPED_TOPIC = "order.shipped"

TIMESTAMP = re.compile(r"\d{1,12}")
CURRENCY = re.compile(r"[A-Z]{3}")
LANGUAGES = ("", "en", "fr", "ar")
CONSENT_CHANNELS = ("whatsapp", "sms", "email")
MAX_AMOUNT = Decimal("9999999999.99")  # Order's money fields: 12 digits, 2 decimal places


class GenericPlatform:
    name = "generic"
    kept_headers = (TOPIC_HEADER, EVENT_ID_HEADER, TIMESTAMP_HEADER, "User-Agent")

    def verify(self, request, store, *, now: datetime) -> bool:
        timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
        given = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
        if not TIMESTAMP.fullmatch(timestamp) or not given:
            return False
        if abs(now.timestamp() - int(timestamp)) > REPLAY_WINDOW.total_seconds():
            return False
        signed = f"{timestamp}.".encode() + request.body
        return signed_with_store_secret(store, now, given, lambda secret: hmac_sha256(secret, signed).hex())

    def idempotency_key(self, request) -> str:
        return request.headers.get(EVENT_ID_HEADER, "").strip()

    def topic(self, request) -> str:
        return request.headers.get(TOPIC_HEADER, "").strip()

    def parse(self, topic: str, payload, store) -> list[StoreAction]:
        if topic not in (*ORDER_TOPICS, CANCELLED_TOPIC, SHIPPED_TOPIC):
            raise UnknownTopic(topic)
        if not isinstance(payload, dict):
            raise MalformedPayload("payload is not a JSON object")
        external_id = fields.identifier(payload.get("id"), "id", max_length=100)
        if topic == CANCELLED_TOPIC:
            reason = _string(payload, "reason") or "cancelled by the store"
            updated_at = _datetime(payload, "updated_at", required=False)
            return [StoreAction("cancel", external_id, reason=reason, updated_at=updated_at)]
        if topic == SHIPPED_TOPIC:
            updated_at = _datetime(payload, "updated_at", required=False)
            return [StoreAction("shipment", external_id, shipment=_shipment(payload), updated_at=updated_at)]

        order, paid = _order(external_id, payload)
        actions = [StoreAction("upsert", external_id, order=order, updated_at=order.updated_at)]
        # A new prepaid order's upsert already says it is paid; COD cash collected is news either way.
        if paid and (order.payment_method == PaymentMethod.COD or topic != "order.created"):
            actions.append(StoreAction("paid", external_id, updated_at=order.updated_at))
        return actions


def _order(external_id: str, payload: dict) -> tuple[IncomingOrder, bool]:
    payment_method = _string(payload, "payment_method", required=True)
    if payment_method not in PaymentMethod.values:
        raise MalformedPayload('payment_method must be "cod" or "prepaid"')
    cod = payment_method == PaymentMethod.COD
    paid = payload.get("paid")
    if not isinstance(paid, bool):
        raise MalformedPayload("paid must be true or false")
    currency = _string(payload, "currency", required=True)
    if not CURRENCY.fullmatch(currency):
        raise MalformedPayload("currency must be an ISO 4217 code such as MAD")
    total = _amount(payload.get("total_amount"), "total_amount")
    if cod:
        cod_amount = (
            total if payload.get("cod_amount") is None else _amount(payload["cod_amount"], "cod_amount")
        )
        if cod_amount > total:
            raise MalformedPayload("cod_amount is more than total_amount")
    else:
        cod_amount = (
            Decimal("0")
            if payload.get("cod_amount") is None
            else _amount(payload["cod_amount"], "cod_amount")
        )
        if cod_amount:
            raise MalformedPayload("cod_amount must be 0 for a prepaid order")
    order = IncomingOrder(
        external_id=external_id,
        number=fields.identifier(payload.get("number"), "number", max_length=50),
        payment_method=payment_method,
        paid=paid and not cod,
        currency=currency,
        total_amount=total,
        cod_amount=cod_amount,
        customer=_customer(payload.get("customer")),
        placed_at=_datetime(payload, "placed_at"),
        updated_at=_datetime(payload, "updated_at"),
        items=_items(payload.get("items")),
        shipping_address=_string(payload, "shipping_address"),
        shipping_city=_string(payload, "shipping_city", max_length=100),
        notes=_string(payload, "notes"),
        tags=_tags(payload.get("tags")),
    )
    return order, paid


def _customer(customer) -> IncomingCustomer:
    customer = fields.json_object(customer, "customer", required=True)
    name = _string(customer, "name", required=True, prefix="customer.", max_length=200)
    language = _string(customer, "language", prefix="customer.")
    if language not in LANGUAGES:
        raise MalformedPayload('customer.language must be "en", "fr", "ar" or empty')
    consents = fields.object_array(customer.get("consents") or [], "customer.consents")
    claims = []
    for index, consent in enumerate(consents):
        where = f"customer.consents[{index}]"
        if consent.get("channel") not in CONSENT_CHANNELS:
            raise MalformedPayload(f"{where}.channel must be one of {', '.join(CONSENT_CHANNELS)}")
        if not isinstance(consent.get("subscribed"), bool):
            raise MalformedPayload(f"{where}.subscribed must be true or false")
        subscribed = consent["subscribed"]
        claims.append(
            ConsentClaim(
                channel=consent["channel"],
                subscribed=subscribed,
                field=f"{where}.subscribed",
                value="true" if subscribed else "false",
            )
        )
    return IncomingCustomer(
        name=name,
        phone=_string(customer, "phone", prefix="customer.", max_length=40),
        email=_string(customer, "email", prefix="customer.", max_length=254),
        language=language,
        consents=tuple(claims),
    )


def _items(items) -> tuple[IncomingItem, ...]:
    parsed = []
    for index, item in enumerate(fields.object_array(items, "items")):
        where = f"items[{index}]"
        quantity = fields.whole_number(item.get("quantity"), f"{where}.quantity", minimum=1)
        parsed.append(
            IncomingItem(
                title=_string(item, "title", required=True, prefix=f"{where}.", max_length=300),
                quantity=quantity,
                unit_price=_amount(item.get("unit_price"), f"{where}.unit_price"),
                sku=_string(item, "sku", prefix=f"{where}.", max_length=100),
            )
        )
    return tuple(parsed)


def _shipment(payload: dict) -> IncomingShipment:
    shipment = fields.json_object(payload.get("shipment"), "shipment", required=True)
    return IncomingShipment(
        carrier=_string(shipment, "carrier", required=True, prefix="shipment.", max_length=100),
        tracking_number=_string(
            shipment, "tracking_number", required=True, prefix="shipment.", max_length=100
        ),
        tracking_url=_string(shipment, "tracking_url", prefix="shipment.", max_length=500),
        external_id=_string(shipment, "id", prefix="shipment.", max_length=100),
        status=_string(shipment, "status", prefix="shipment.", max_length=100),
    )


def _tags(tags) -> tuple[str, ...]:
    if tags is None:
        return ()
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise MalformedPayload("tags must be a list of strings")
    return tuple(tag.strip() for tag in tags if tag.strip())


def _string(payload: dict, key: str, *, required: bool = False, prefix: str = "", max_length: int = 0) -> str:
    value = payload.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise MalformedPayload(f"{prefix}{key} is missing or not a string")
    if max_length and len(value.strip()) > max_length:
        raise MalformedPayload(f"{prefix}{key} is longer than {max_length} characters")
    return value.strip()


def _amount(value, field_name: str) -> Decimal:
    amount = fields.money(value, field_name)
    if amount > MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
        raise MalformedPayload(f"{field_name} must be between 0 and {MAX_AMOUNT}, with at most 2 decimals")
    return amount


def _datetime(payload: dict, key: str, *, required: bool = True) -> datetime | None:
    value = payload.get(key)
    if value is None and not required:
        return None  # but "" is malformed here, where Shopify and WooCommerce read it as unset
    return fields.date_time(value, key)  # an offset is required


register(GenericPlatform())
