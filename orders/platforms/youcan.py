"""YouCan REST hooks (developer.youcan.shop/store-admin/resthooks/).

YouCan has one order event, ``order.create``, subscribed with ``POST /resthooks/subscribe``; there
is no order-updated or cancelled event, so later changes must be polled, and an order's
``updated_at`` here is its ``created_at``.

Signature: YouCan's REST hooks page says ``x-youcan-signature`` is an HMAC-SHA256 of the payload
keyed with the OAuth client secret of the app that subscribed (``store.platform_secret``); its PHP
example uses ``hash_hmac``, i.e. lowercase hex, over ``json_encode($payload)``, which is the body
YouCan sends, so Livra checks it over the raw body. Community integrations disagree on the
encoding (hex in most, base64 in some), and no delivery has been captured to settle it, so a base64
digest of the same HMAC is accepted too: both are the same secret's HMAC, so this widens nothing
an attacker without the secret can use. An empty secret never verifies.

Keys: YouCan sends no delivery id, so the idempotency key is ``"<topic>:<order id>"`` (an order
is created once, so its id names the event); a body that is not a JSON object with an id is keyed
by its SHA-256 instead. The topic is ``x-youcan-event`` when sent, else ``order.create`` (the only
order event).

Order fields: ``id`` (uuid), ``ref`` (shown as ``#<ref>``), ``total``, ``currency``, ``created_at``,
``customer{first_name, last_name, email, phone}``, ``variants[{price, quantity, variant{sku,
product{name}}}]``, ``payment{status, status_text, payload{gateway}}``, and the shipping address in
``shipping.address[0]`` (``customer.address``/``city`` otherwise).

Cash on delivery: YouCan documents ``status``/``payment_status`` only as integers, with no table
of values, so Livra does not read them. It decides with, in order:

1. ``payment.payload.gateway`` when present: one of the store's ``cod_gateway_names`` (e.g.
   ``cod``) is COD, any other gateway prepaid (paid when ``payment.status_text`` is ``paid``);
2. otherwise ``payment.status_text``: ``paid`` is a prepaid order already paid; anything else
   (``pending``…) is COD. On YouCan an online payment is taken at checkout, so an order created
   unpaid is, for the Moroccan stores Livra serves, a cash-on-delivery order.
"""

import base64
import hashlib
from datetime import UTC, datetime
from decimal import Decimal

from orders import untrusted_json
from orders.platforms import (
    IncomingCustomer,
    IncomingItem,
    IncomingOrder,
    MalformedPayload,
    StoreAction,
    UnknownTopic,
    fields,
    hmac_sha256,
    register,
    signature_matches,
)
from orders.transitions import PaymentMethod

SIGNATURE_HEADER = "x-youcan-signature"
EVENT_HEADER = "x-youcan-event"
ORDER_CREATE = "order.create"


class YouCanPlatform:
    name = "youcan"
    kept_headers = (EVENT_HEADER, "User-Agent")

    def verify(self, request, store, *, now: datetime) -> bool:
        secret = store.platform_secret
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not secret or not given:
            return False
        digest = hmac_sha256(secret, request.body)
        # Both compared, no early exit: the time taken does not say which encoding was sent.
        matches = [
            signature_matches(digest.hex(), given.strip().lower()),
            signature_matches(base64.b64encode(digest).decode(), given),
        ]
        return any(matches)

    def idempotency_key(self, request) -> str:
        try:
            payload = untrusted_json.loads(request.body)
        except ValueError:  # not JSON, not UTF-8, or nested too deep: keyed by its hash
            payload = None
        order_id = payload.get("id") if isinstance(payload, dict) else None
        if isinstance(order_id, str | int) and not isinstance(order_id, bool) and str(order_id).strip():
            return f"{self.topic(request)}:{str(order_id).strip()}"
        return f"sha256:{hashlib.sha256(request.body).hexdigest()}"

    def topic(self, request) -> str:
        return request.headers.get(EVENT_HEADER, "").strip() or ORDER_CREATE

    def parse(self, topic: str, payload, store) -> list[StoreAction]:
        if topic != ORDER_CREATE:
            raise UnknownTopic(topic)
        if not isinstance(payload, dict):
            raise MalformedPayload("payload is not a JSON object")
        order = _incoming_order(payload, store)
        return [StoreAction("upsert", order.external_id, order=order, updated_at=order.updated_at)]


def _incoming_order(payload: dict, store) -> IncomingOrder:
    # Any JSON value but a boolean makes an id here (a float too), unlike fields.identifier.
    external_id = fields.text(payload.get("id"))
    if not external_id or isinstance(payload.get("id"), bool):
        raise MalformedPayload("id is missing")
    payment = fields.json_object(payload.get("payment"), "payment")
    cod, paid = _payment_method(payment, store)
    # YouCan sends amounts as JSON numbers (479 or 21.5).
    total = fields.money(payload.get("total"), "total")
    customer = fields.json_object(payload.get("customer"), "customer")
    address = _first_shipping_address(payload)
    # YouCan writes ISO 8601 in UTC ("…Z"); a time without an offset is read as UTC too.
    placed_at = fields.date_time(payload.get("created_at"), "created_at", naive_zone=UTC)
    ref = fields.text(payload.get("ref")).removeprefix("#") or external_id
    return IncomingOrder(
        external_id=external_id,
        number=f"#{ref}",
        payment_method=PaymentMethod.COD.value if cod else PaymentMethod.PREPAID.value,
        paid=paid,
        currency=fields.text(payload.get("currency")) or store.currency,
        total_amount=total,
        cod_amount=total if cod else Decimal("0"),
        customer=IncomingCustomer(
            name=fields.full_name(customer) or fields.full_name(address),
            phone=fields.first_text(customer.get("phone"), address.get("phone")),
            email=fields.text(customer.get("email")),
        ),
        placed_at=placed_at,
        updated_at=placed_at,  # YouCan sends no later event for an order
        items=_items(payload.get("variants")),
        shipping_address=fields.first_text(address.get("address"), customer.get("address")),
        shipping_city=fields.first_text(address.get("city"), customer.get("city")),
        notes=fields.text(payload.get("notes")),
        tags=tuple(tag for tag in payload.get("tags") or () if isinstance(tag, str) and tag.strip()),
    )


def _payment_method(payment: dict, store) -> tuple[bool, bool]:
    """(is cash on delivery, money already taken): see the module docstring."""
    paid_text = fields.text(payment.get("status_text")).lower() == "paid"
    gateway_payload = payment.get("payload")
    gateway = fields.text(gateway_payload.get("gateway")).lower() if isinstance(gateway_payload, dict) else ""
    if gateway:
        cod_names = [name.lower() for name in (store.cod_gateway_names or ["cod"]) if isinstance(name, str)]
        spellings = (gateway, gateway.replace("_", " "))
        cod = any(name and name in spelling for name in cod_names for spelling in spellings)
        return cod, (not cod and paid_text)
    return (not paid_text), paid_text


def _first_shipping_address(payload: dict) -> dict:
    shipping = fields.json_object(payload.get("shipping"), "shipping")
    addresses = shipping.get("address")
    if isinstance(addresses, list) and addresses and isinstance(addresses[0], dict):
        return addresses[0]
    return {}


def _items(variants) -> tuple[IncomingItem, ...]:
    items = []
    for index, line in enumerate(fields.object_array(variants, "variants")):
        where = f"variants[{index}]"
        quantity = fields.whole_number(line.get("quantity"), f"{where}.quantity")
        variant = line.get("variant") if isinstance(line.get("variant"), dict) else {}
        product = variant.get("product") if isinstance(variant.get("product"), dict) else {}
        items.append(
            IncomingItem(
                title=fields.text(product.get("name")),
                quantity=quantity,
                unit_price=fields.money(line.get("price"), f"{where}.price"),
                sku=fields.text(variant.get("sku")),
            )
        )
    return tuple(items)


register(YouCanPlatform())
