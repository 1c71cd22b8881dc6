"""WooCommerce webhooks (REST API v3 order representation).

Delivery: a JSON POST of the order as ``GET /wp-json/wc/v3/orders/<id>`` returns it, signed in
``X-WC-Webhook-Signature`` with base64 HMAC-SHA256 of the raw body. The secret is Livra's webhook
secret for the store (pasted into WooCommerce's webhook settings), so the previous one still
verifies during the rotation grace. Saving a webhook in WooCommerce sends a ping: a form post
``webhook_id=N`` with no signature; it raises ``PingDelivery`` so the view answers 200 and
WooCommerce keeps the webhook active.

Keys: ``X-WC-Webhook-Delivery-ID`` is the idempotency key, ``X-WC-Webhook-Topic`` the topic.

Topics and actions:

=============================  =================================================================
``order.created``/``updated``  ``upsert``, then the status row below
``order.restored``             ``upsert``, ``flag`` (Livra cancelled it on delete), row below
``order.deleted``              ``cancel`` "deleted in WooCommerce" (payload is ``{"id": N}``)
anything else                  ``UnknownTopic``
=============================  =================================================================

WooCommerce status → extra action (``wc-`` prefix ignored):

================  ==================================================================
pending           none: awaiting payment (prepaid) or just placed
processing        none: the default for a new COD order, so for COD it does NOT mean paid
on-hold           none: some shops park COD orders here
checkout-draft    none: block checkout's draft, not an order yet
trash             none: ``order.deleted`` follows and cancels
completed         ``paid``: the store recorded the order as complete and paid (for COD,
                  that the cash was collected); Livra does not infer delivery from it
cancelled         ``cancel`` "cancelled in WooCommerce"
failed            ``cancel`` "payment failed"
refunded          ``refund`` "refunded in WooCommerce"
anything else     ``flag`` naming the status (plugins' custom statuses are kept, shown to a
                  human, never guessed)
================  ==================================================================

A prepaid order whose payload says it is paid (``date_paid_gmt`` set, or status processing /
completed) is upserted with ``paid=True``; on ``order.updated``/``order.restored`` it also gets a
``paid`` action when its status asks for nothing else, so a payment recorded after creation
reaches Livra (WooCommerce has no order-paid topic).

Order fields: ``number`` becomes ``"#" + number`` (as WooCommerce shows it: "Order #727");
``payment_method == "cod"`` is cash on delivery, anything else prepaid; times are the ``*_gmt``
fields (naive UTC in the payload). Consent comes from ``meta_data`` checkout fields
(``CONSENT_META_KEYS``).
"""

import base64
import re
from datetime import UTC, datetime
from decimal import Decimal

from orders.platforms import (
    ConsentClaim,
    IncomingCustomer,
    IncomingItem,
    IncomingOrder,
    MalformedPayload,
    PingDelivery,
    StoreAction,
    UnknownTopic,
    fields,
    hmac_sha256,
    register,
    signed_with_store_secret,
)
from orders.transitions import PaymentMethod

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
DELIVERY_ID_HEADER = "X-WC-Webhook-Delivery-ID"

UPSERT_TOPICS = ("order.created", "order.updated", "order.restored")
DELETED_TOPIC = "order.deleted"

# The ping's whole body. WordPress posts it as a string, which its HTTP transports send as
# application/x-www-form-urlencoded (some send no content type at all).
PING_BODY = re.compile(rb"webhook_id=\d+")
PING_CONTENT_TYPES = ("application/x-www-form-urlencoded", "")

NO_ACTION_STATUSES = frozenset({"pending", "processing", "on-hold", "checkout-draft", "trash"})
CANCEL_REASONS = {"cancelled": "cancelled in WooCommerce", "failed": "payment failed"}
PAID_STATUSES_FOR_PREPAID = frozenset({"processing", "completed"})
CENT = Decimal("0.01")

# Checkout fields that plugins and themes store in the order's meta_data (the leading "_" and
# "_wc_" only hide a key from the admin's custom-fields box): key → channel.
CONSENT_META_KEYS = {
    "whatsapp_opt_in": "whatsapp",
    "sms_opt_in": "sms",
    "email_opt_in": "email",
    "marketing_opt_in": "email",
}


class WooCommercePlatform:
    name = "woocommerce"
    kept_headers = (
        "X-WC-Webhook-Source",
        TOPIC_HEADER,
        "X-WC-Webhook-Resource",
        "X-WC-Webhook-Event",
        "X-WC-Webhook-ID",
        DELIVERY_ID_HEADER,
        "User-Agent",
    )

    def verify(self, request, store, *, now: datetime) -> bool:
        if _is_ping(request):
            raise PingDelivery("WooCommerce webhook ping")
        given = request.headers.get(SIGNATURE_HEADER, "")
        return signed_with_store_secret(
            store, now, given, lambda secret: base64.b64encode(hmac_sha256(secret, request.body)).decode()
        )

    def idempotency_key(self, request) -> str:
        return request.headers.get(DELIVERY_ID_HEADER, "").strip()

    def topic(self, request) -> str:
        return request.headers.get(TOPIC_HEADER, "").strip()

    def parse(self, topic: str, payload, store) -> list[StoreAction]:
        if topic not in (*UPSERT_TOPICS, DELETED_TOPIC):
            raise UnknownTopic(topic)
        if not isinstance(payload, dict):
            raise MalformedPayload("payload is not a JSON object")
        external_id = fields.identifier(payload.get("id"), "id", digits_only=True)
        if topic == DELETED_TOPIC:
            return [StoreAction("cancel", external_id, reason="deleted in WooCommerce")]

        order = _incoming_order(external_id, payload, store)
        actions = [StoreAction("upsert", external_id, order=order, updated_at=order.updated_at)]
        if topic == "order.restored":
            actions.append(
                StoreAction(
                    "flag",
                    external_id,
                    reason="restored in WooCommerce after being deleted; Livra had cancelled it",
                    updated_at=order.updated_at,
                )
            )
        # A new order's upsert already says it is paid; a paid action is for a payment recorded later.
        paid_later = order.paid and topic != "order.created"
        actions.extend(
            _status_actions(external_id, fields.text(payload.get("status")), order, paid_later=paid_later)
        )
        return actions


def _is_ping(request) -> bool:
    content_type = request.content_type or ""
    return content_type in PING_CONTENT_TYPES and PING_BODY.fullmatch(request.body.strip()) is not None


def _status_actions(
    external_id: str, status: str, order: IncomingOrder, *, paid_later: bool
) -> list[StoreAction]:
    key = status.removeprefix("wc-")
    when = order.updated_at
    detail = {"status": status}
    paid_action = StoreAction("paid", external_id, updated_at=when, detail=detail)
    if key in CANCEL_REASONS:
        return [
            StoreAction("cancel", external_id, reason=CANCEL_REASONS[key], updated_at=when, detail=detail)
        ]
    if key == "refunded":
        return [
            StoreAction(
                "refund", external_id, reason="refunded in WooCommerce", updated_at=when, detail=detail
            )
        ]
    if key == "completed":
        return [paid_action]
    if key in NO_ACTION_STATUSES:
        return [paid_action] if paid_later else []
    return [
        StoreAction(
            "flag",
            external_id,
            reason=f'WooCommerce status "{status}" is not one Livra maps; order left as it is',
            updated_at=when,
            detail=detail,
        )
    ]


def _incoming_order(external_id: str, payload: dict, store) -> IncomingOrder:
    status = fields.text(payload.get("status")).removeprefix("wc-")
    cod = fields.text(payload.get("payment_method")) == "cod"
    total = fields.money(payload.get("total"), "total")
    paid = not cod and (bool(payload.get("date_paid_gmt")) or status in PAID_STATUSES_FOR_PREPAID)
    billing = fields.json_object(payload.get("billing"), "billing")
    shipping = fields.json_object(payload.get("shipping"), "shipping")
    number = fields.text(payload.get("number")) or external_id
    return IncomingOrder(
        external_id=external_id,
        number=f"#{number}",
        payment_method=PaymentMethod.COD.value if cod else PaymentMethod.PREPAID.value,
        paid=paid,
        currency=fields.text(payload.get("currency")) or store.currency,
        total_amount=total,
        cod_amount=total if cod else Decimal("0"),
        customer=IncomingCustomer(
            name=fields.full_name(billing) or fields.full_name(shipping),
            phone=fields.first_text(billing.get("phone"), shipping.get("phone")),
            email=fields.text(billing.get("email")),
            consents=_consents(payload.get("meta_data")),
        ),
        # The *_gmt fields are UTC written without an offset.
        placed_at=fields.date_time(payload.get("date_created_gmt"), "date_created_gmt", naive_zone=UTC),
        updated_at=fields.optional_date_time(
            payload.get("date_modified_gmt"), "date_modified_gmt", naive_zone=UTC
        ),
        items=_items(payload.get("line_items")),
        shipping_address=_street(shipping) or _street(billing),
        shipping_city=fields.first_text(shipping.get("city"), billing.get("city")),
        notes=fields.text(payload.get("customer_note")),
    )


def _items(line_items) -> tuple[IncomingItem, ...]:
    items = []
    for index, line in enumerate(fields.object_array(line_items, "line_items")):
        where = f"line_items[{index}]"
        quantity = fields.whole_number(line.get("quantity"), f"{where}.quantity")
        # WooCommerce sends totals as strings ("479.00") and line prices as JSON numbers (349 or 21.99).
        if line.get("price") not in (None, ""):
            unit_price = fields.money(line["price"], f"{where}.price")
        elif quantity:
            unit_price = (fields.money(line.get("total"), f"{where}.total") / quantity).quantize(CENT)
        else:
            unit_price = Decimal("0")
        items.append(
            IncomingItem(
                title=fields.text(line.get("name")),
                quantity=quantity,
                unit_price=unit_price,
                sku=fields.text(line.get("sku")),
            )
        )
    return tuple(items)


def _consents(meta_data) -> tuple[ConsentClaim, ...]:
    if not isinstance(meta_data, list):
        return ()
    claims = []
    for entry in meta_data:
        if not isinstance(entry, dict):
            continue
        key = fields.text(entry.get("key"))
        channel = CONSENT_META_KEYS.get(key.removeprefix("_").removeprefix("wc_"))
        value = fields.text(entry.get("value"))
        subscribed = fields.yes_or_no(value)
        if channel is None or subscribed is None:
            continue  # not a consent field, or a value that says neither yes nor no: no claim
        claims.append(
            ConsentClaim(channel=channel, subscribed=subscribed, field=f"meta_data.{key}", value=value)
        )
    return tuple(claims)


def _street(address: dict) -> str:
    return fields.joined_text(address.get("address_1"), address.get("address_2"), separator=", ")


register(WooCommercePlatform())
