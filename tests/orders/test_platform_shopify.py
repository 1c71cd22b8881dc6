"""The Shopify adapter: signatures, keys and payloads shaped like Shopify's documented examples
(tests/fixtures/stores/shopify), with the signature computed here over the fixture's bytes."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import RequestFactory

from orders.platforms import ConsentClaim, MalformedPayload, UnknownTopic, get_platform
from orders.platforms.shopify import ShopifyPlatform
from tests.factories import StoreFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stores" / "shopify"
SECRET = "shpss_0123456789abcdef0123456789abcdef"
SHOP = "atlas-souk.myshopify.com"
NOW = datetime(2024, 11, 10, 9, 31, tzinfo=UTC)
shopify = ShopifyPlatform()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture(name: str) -> dict:
    return json.loads(fixture_bytes(name))


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def delivery(body: bytes, *, signature: str | None = None, **headers):
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": "2024-10",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2024-11-10T09:30:02.130123Z",
        **headers,
    }
    if signature is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature
    headers = {name: value for name, value in headers.items() if value is not None}
    return RequestFactory().post(
        "/webhooks/shopify/atlas-souk/", data=body, content_type="application/json", headers=headers
    )


def store(**overrides):
    return StoreFactory.build(**{"platform_secret": SECRET, "shop_domain": SHOP, **overrides})


def order_from(payload: dict, **store_overrides):
    (upsert,) = shopify.parse("orders/create", payload, store(**store_overrides))
    return upsert.order


def cod_order(**changes) -> dict:
    return {**fixture("orders_create"), **changes}


def test_the_adapter_is_registered_as_shopify():
    assert isinstance(get_platform("shopify"), ShopifyPlatform)


# --- verify -------------------------------------------------------------------------------------
def test_a_delivery_signed_with_the_shop_secret_verifies():
    body = fixture_bytes("orders_create")
    assert shopify.verify(delivery(body, signature=sign(body)), store(), now=NOW)


def test_a_delivery_signed_with_another_secret_does_not_verify():
    body = fixture_bytes("orders_create")
    assert not shopify.verify(delivery(body, signature=sign(body, "another-secret")), store(), now=NOW)


def test_a_body_changed_after_signing_does_not_verify():
    body = fixture_bytes("orders_create")
    tampered = body.replace(b'"619.00"', b'"1.00"')
    assert not shopify.verify(delivery(tampered, signature=sign(body)), store(), now=NOW)


def test_a_delivery_without_a_signature_does_not_verify():
    assert not shopify.verify(delivery(fixture_bytes("orders_create")), store(), now=NOW)


def test_a_store_without_a_shopify_secret_verifies_nothing():
    body = fixture_bytes("orders_create")
    assert not shopify.verify(delivery(body, signature=sign(body, "")), store(platform_secret=""), now=NOW)


def test_a_delivery_from_another_shop_does_not_verify():
    body = fixture_bytes("orders_create")
    request = delivery(body, signature=sign(body), **{"X-Shopify-Shop-Domain": "other-shop.myshopify.com"})
    assert not shopify.verify(request, store(), now=NOW)


def test_the_shop_domain_is_compared_without_case():
    body = fixture_bytes("orders_create")
    request = delivery(body, signature=sign(body), **{"X-Shopify-Shop-Domain": "Atlas-Souk.MyShopify.com"})
    assert shopify.verify(request, store(), now=NOW)


def test_a_store_without_a_shop_domain_accepts_any_signed_shop():
    body = fixture_bytes("orders_create")
    request = delivery(body, signature=sign(body), **{"X-Shopify-Shop-Domain": None})
    assert shopify.verify(request, store(shop_domain=""), now=NOW)


# --- keys, topic, kept headers --------------------------------------------------------------------
def test_the_event_id_is_the_idempotency_key():
    assert shopify.idempotency_key(delivery(b"{}")) == "98880550-7158-44d4-b7cd-2c97c8a091b5"


def test_the_webhook_id_is_the_idempotency_key_without_an_event_id():
    request = delivery(b"{}", **{"X-Shopify-Event-Id": None})
    assert shopify.idempotency_key(request) == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def test_a_delivery_without_ids_has_no_idempotency_key():
    request = delivery(b"{}", **{"X-Shopify-Event-Id": None, "X-Shopify-Webhook-Id": None})
    assert shopify.idempotency_key(request) == ""


def test_the_topic_is_read_from_its_header():
    assert shopify.topic(delivery(b"{}", **{"X-Shopify-Topic": "refunds/create"})) == "refunds/create"


def test_the_signature_is_never_among_the_kept_headers():
    assert "X-Shopify-Topic" in shopify.kept_headers
    assert all("hmac" not in header.lower() for header in shopify.kept_headers)


# --- orders -------------------------------------------------------------------------------------
def test_orders_create_maps_the_order_with_decimal_money_and_aware_times():
    order = order_from(fixture("orders_create"))
    assert (order.external_id, order.number, order.currency) == ("6123456789012", "#1001", "MAD")
    assert order.total_amount == Decimal("619.00") and isinstance(order.total_amount, Decimal)
    assert order.placed_at == datetime(2024, 11, 10, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert order.updated_at == datetime(2024, 11, 10, 9, 30, 2, tzinfo=UTC)
    assert [(i.title, i.quantity, i.unit_price, i.sku) for i in order.items] == [
        ("Caftan brodé", 1, Decimal("349.00"), "CAF-BL-M"),
        ("Babouches en cuir", 2, Decimal("120.00"), "BAB-39"),
    ]
    assert (order.shipping_address, order.shipping_city) == (
        "12 Rue Ibn Batouta, Appartement 4",
        "Casablanca",
    )
    assert order.notes == "Appeler avant de livrer, 2e étage"
    assert order.tags == ("COD", "Casablanca", "facebook")


def test_a_cash_on_delivery_gateway_makes_an_unpaid_cod_order_collecting_the_total():
    order = order_from(fixture("orders_create"))
    assert (order.payment_method, order.paid, order.cod_amount) == ("cod", False, Decimal("619.00"))


def test_a_gateway_renamed_by_the_merchant_is_cod_when_the_store_lists_it():
    payload = cod_order(payment_gateway_names=["Paiement à la livraison"])
    order = order_from(payload, cod_gateway_names=["paiement à la livraison"])
    assert order.payment_method == "cod"


def test_the_older_gateway_field_is_read_too():
    assert order_from(cod_order(payment_gateway_names=[], gateway="cash_on_delivery")).payment_method == "cod"


def test_a_pending_bank_transfer_is_an_unpaid_prepaid_order_not_cod():
    order = order_from(cod_order(payment_gateway_names=["Bank Deposit"], financial_status="pending"))
    assert (order.payment_method, order.paid, order.cod_amount) == ("prepaid", False, Decimal("0"))


def test_a_gateway_merely_containing_the_letters_cod_is_not_cod():
    assert order_from(cod_order(payment_gateway_names=["Pay by QR code"])).payment_method == "prepaid"


@pytest.mark.parametrize(
    ("financial_status", "paid"), [("paid", True), ("authorized", False), ("partially_paid", False)]
)
def test_a_card_order_is_paid_once_shopify_has_the_money(financial_status, paid):
    order = order_from(
        cod_order(payment_gateway_names=["shopify_payments"], financial_status=financial_status)
    )
    assert (order.payment_method, order.paid) == ("prepaid", paid)


def test_an_edited_order_carries_what_is_left_to_ship_and_collect():
    payload = cod_order(current_total_price="269.00")
    payload["line_items"][0]["current_quantity"] = 0
    payload["line_items"][1]["current_quantity"] = 1
    order = order_from(payload)
    assert (order.total_amount, order.cod_amount) == (Decimal("269.00"), Decimal("269.00"))
    assert [(item.sku, item.quantity) for item in order.items] == [("BAB-39", 1)]


def test_orders_updated_only_upserts_an_open_order():
    (upsert,) = shopify.parse("orders/updated", fixture("orders_create"), store())
    assert (upsert.kind, upsert.external_id, upsert.updated_at) == (
        "upsert",
        "6123456789012",
        upsert.order.updated_at,
    )


def test_orders_updated_with_a_cancellation_also_cancels():
    payload = cod_order(cancelled_at="2024-11-10T15:12:40+01:00", cancel_reason="inventory")
    actions = shopify.parse("orders/updated", payload, store())
    assert [(a.kind, a.reason) for a in actions] == [("upsert", ""), ("cancel", "inventory")]


def test_orders_cancelled_upserts_then_cancels_with_the_reason():
    upsert, cancel = shopify.parse("orders/cancelled", fixture("orders_cancelled"), store())
    assert upsert.kind == "upsert"
    assert (cancel.kind, cancel.external_id, cancel.reason) == ("cancel", "6123456789012", "customer")
    assert cancel.updated_at == datetime(2024, 11, 10, 14, 12, 40, tzinfo=UTC)


def test_a_cancelled_order_keeps_what_was_placed():
    upsert, _ = shopify.parse("orders/cancelled", fixture("orders_cancelled"), store())
    assert upsert.order.total_amount == Decimal("619.00")
    assert [item.quantity for item in upsert.order.items] == [1, 2]


def test_orders_paid_upserts_then_records_the_payment():
    upsert, paid = shopify.parse("orders/paid", fixture("orders_paid"), store())
    assert (upsert.kind, paid.kind, paid.external_id) == ("upsert", "paid", "6123456789012")
    assert upsert.order.payment_method == "cod"  # the cash was collected: still a COD order


# --- customer -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cleared", "expected"),
    [
        ([], "+212 6 11 11 11 11"),
        (["phone"], "0612345678"),
        (["phone", "shipping_address.phone"], "0633333333"),
        (["phone", "shipping_address.phone", "customer.phone"], "+212 6 12 34 56 78"),
    ],
)
def test_the_phone_is_the_first_given_of_order_shipping_customer_and_billing(cleared, expected):
    payload = cod_order(phone="+212 6 11 11 11 11")
    payload["customer"]["phone"] = "0633333333"
    for path in cleared:
        *parents, key = path.split(".")
        record = payload[parents[0]] if parents else payload
        record[key] = None
    assert order_from(payload).customer.phone == expected


@pytest.mark.parametrize(
    ("email", "contact_email", "expected"),
    [
        ("a@example.com", "b@example.com", "a@example.com"),
        ("", "b@example.com", "b@example.com"),
        (None, None, "salma.bennani@example.com"),
    ],
)
def test_the_email_is_the_order_email_then_the_contact_email_then_the_customer_email(
    email, contact_email, expected
):
    assert order_from(cod_order(email=email, contact_email=contact_email)).customer.email == expected


def test_the_name_comes_from_the_customer():
    assert order_from(fixture("orders_create")).customer.name == "Salma Bennani"


def test_a_guest_order_is_named_after_its_shipping_address():
    payload = cod_order(customer=None)
    payload["shipping_address"].update(first_name=None, last_name=None, name="Youssef El Amrani")
    assert order_from(payload).customer.name == "Youssef El Amrani"


@pytest.mark.parametrize(
    ("locale", "language"), [("fr-MA", "fr"), ("ar", "ar"), ("en-US", "en"), ("es", ""), (None, "")]
)
def test_the_language_is_read_from_the_checkout_locale(locale, language):
    assert order_from(cod_order(customer_locale=locale)).customer.language == language


# --- consent ------------------------------------------------------------------------------------
def test_checkout_consents_become_claims_with_their_evidence():
    assert order_from(fixture("orders_create")).customer.consents == (
        ConsentClaim("email", False, "buyer_accepts_marketing", "false"),
        ConsentClaim("email", False, "customer.email_marketing_consent.state", "not_subscribed"),
        ConsentClaim("sms", True, "customer.sms_marketing_consent.state", "subscribed"),
        ConsentClaim("whatsapp", True, "note_attributes.whatsapp_opt_in", "oui"),
    )


@pytest.mark.parametrize(
    ("name", "value", "subscribed"),
    [
        ("whatsapp_consent", "Yes", True),
        ("WhatsApp opt-in", "1", True),
        ("whatsapp_opt_in", "non", False),
        ("whatsapp_optin", "false", False),
    ],
)
def test_a_whatsapp_note_attribute_is_a_whatsapp_claim(name, value, subscribed):
    payload = cod_order(note_attributes=[{"name": name, "value": value}])
    claims = [c for c in order_from(payload).customer.consents if c.channel == "whatsapp"]
    assert claims == [ConsentClaim("whatsapp", subscribed, f"note_attributes.{name}", value)]


def test_an_unreadable_whatsapp_answer_claims_nothing():
    payload = cod_order(note_attributes=[{"name": "whatsapp_opt_in", "value": "peut-être"}])
    assert not [c for c in order_from(payload).customer.consents if c.channel == "whatsapp"]


def test_a_pending_double_opt_in_claims_nothing():
    payload = fixture("orders_create")
    payload["customer"]["sms_marketing_consent"]["state"] = "pending"
    assert not [c for c in order_from(payload).customer.consents if c.channel == "sms"]


# --- fulfillments and refunds ---------------------------------------------------------------------
def test_fulfillments_create_records_the_shipment_on_the_order():
    (action,) = shopify.parse("fulfillments/create", fixture("fulfillments_create"), store())
    assert (action.kind, action.external_id) == ("shipment", "6123456789012")
    assert (action.shipment.carrier, action.shipment.tracking_number) == ("Amana", "CP123456789MA")
    assert action.shipment.tracking_url == "https://www.poste.ma/suivi?code=CP123456789MA"
    assert (action.shipment.external_id, action.shipment.status) == ("5512345678901", "")


def test_fulfillments_update_carries_the_shipment_status():
    payload = {**fixture("fulfillments_create"), "shipment_status": "out_for_delivery"}
    (action,) = shopify.parse("fulfillments/update", payload, store())
    assert action.shipment.status == "out_for_delivery"


def test_the_tracking_lists_are_read_when_the_single_fields_are_empty():
    payload = {**fixture("fulfillments_create"), "tracking_number": None, "tracking_url": None}
    (action,) = shopify.parse("fulfillments/update", payload, store())
    assert action.shipment.tracking_number == "CP123456789MA"
    assert action.shipment.tracking_url.endswith("CP123456789MA")


def test_a_cancelled_fulfillment_is_flagged_not_shipped():
    payload = {**fixture("fulfillments_create"), "status": "cancelled"}
    (action,) = shopify.parse("fulfillments/update", payload, store())
    assert (action.kind, action.shipment) == ("flag", None)
    assert "cancelled" in action.reason


def test_refunds_create_refunds_the_order_with_the_note_as_reason():
    (action,) = shopify.parse("refunds/create", fixture("refunds_create"), store())
    assert (action.kind, action.external_id) == ("refund", "6123456789012")
    assert action.reason == "Article retourné : taille trop petite"
    assert action.detail == {"refund_id": "925123456789", "amount": "349.00", "currency": "MAD"}


def test_a_refund_that_moves_no_money_is_flagged_not_applied():
    payload = {**fixture("refunds_create"), "transactions": []}
    (action,) = shopify.parse("refunds/create", payload, store())
    assert (action.kind, action.external_id) == ("flag", "6123456789012")


# --- what is refused ----------------------------------------------------------------------------
def test_an_unknown_topic_is_refused():
    with pytest.raises(UnknownTopic, match="products/update"):
        shopify.parse("products/update", fixture("orders_create"), store())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": None}, "'id'"),
        ({"total_price": "six cents"}, "'total_price'"),
        ({"total_price": "NaN"}, "'total_price'"),
        ({"line_items": {"id": 1}}, "'line_items'"),
        ({"line_items": [{"title": "Caftan", "quantity": 1, "price": 349}, "x"]}, "'line_items[1]'"),
        (
            {"line_items": [{"title": "Caftan", "quantity": "1", "price": "349.00"}]},
            "'line_items[0].quantity'",
        ),
        ({"created_at": "yesterday"}, "'created_at'"),
        ({"customer": "Salma"}, "'customer'"),
    ],
)
def test_a_malformed_order_is_refused_naming_the_field(change, field):
    with pytest.raises(MalformedPayload, match=field.replace("[", r"\[").replace("]", r"\]")):
        shopify.parse("orders/create", cod_order(**change), store())


def test_a_payload_that_is_not_an_object_is_refused():
    with pytest.raises(MalformedPayload, match="JSON object, not an array"):
        shopify.parse("orders/create", [fixture("orders_create")], store())


def test_a_fulfillment_without_its_order_id_is_refused():
    with pytest.raises(MalformedPayload, match="'order_id'"):
        shopify.parse("fulfillments/create", {**fixture("fulfillments_create"), "order_id": None}, store())
