"""The WooCommerce adapter: signatures over the raw body, the ping, keys, and what each delivery says."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import RequestFactory

from orders.platforms import ConsentClaim, MalformedPayload, PingDelivery, UnknownTopic
from orders.platforms.woocommerce import WooCommercePlatform
from tests.factories import StoreFactory

FIXTURES = Path(__file__).parents[1] / "fixtures" / "stores" / "woocommerce"
URL = "/webhooks/woocommerce/atlas-souk/"
NOW = datetime(2025, 6, 10, 13, 32, 10, tzinfo=UTC)
woocommerce = WooCommercePlatform()


def fixture_body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_payload(name: str) -> dict:
    return json.loads(fixture_body(name))


def woo_signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def delivery(body: bytes, *, signature: str | None = None, topic: str = "order.created", **headers):
    """A request as WooCommerce's Hookshot sends it."""
    wc_headers = {
        "X-WC-Webhook-Source": "https://atlas-souk.ma/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[-1],
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "5b0c5e5e1d5a4f2c9d3e8a7b6c5d4e3f",
        "User-Agent": "WooCommerce/9.8.5 Hookshot (WordPress/6.8.1)",
        **headers,
    }
    if signature is not None:
        wc_headers["X-WC-Webhook-Signature"] = signature
    return RequestFactory().post(URL, data=body, content_type="application/json", headers=wc_headers)


@pytest.fixture
def store():
    return StoreFactory.build(slug="atlas-souk", platform="woocommerce", currency="MAD")


def cod_order(**changes) -> dict:
    return fixture_payload("order_created_cod.json") | changes


def kinds(actions) -> list[str]:
    return [action.kind for action in actions]


# --- verify -------------------------------------------------------------------------------------
def test_a_delivery_signed_with_the_store_secret_verifies(store):
    body = fixture_body("order_created_cod.json")
    request = delivery(body, signature=woo_signature(store.webhook_secret, body))
    assert woocommerce.verify(request, store, now=NOW)


def test_a_delivery_signed_with_another_secret_does_not_verify(store):
    body = fixture_body("order_created_cod.json")
    request = delivery(body, signature=woo_signature("not-the-store-secret", body))
    assert not woocommerce.verify(request, store, now=NOW)


def test_a_delivery_whose_body_was_changed_after_signing_does_not_verify(store):
    body = fixture_body("order_created_cod.json")
    signature = woo_signature(store.webhook_secret, body)
    assert not woocommerce.verify(
        delivery(body.replace(b"479.00", b"1.00"), signature=signature), store, now=NOW
    )


def test_a_delivery_without_a_signature_does_not_verify(store):
    assert not woocommerce.verify(delivery(fixture_body("order_created_cod.json")), store, now=NOW)


def test_the_previous_secret_verifies_during_the_rotation_grace(store):
    store.previous_webhook_secret = "the-secret-before-rotation"
    store.webhook_secret_rotated_at = NOW - timedelta(hours=1)
    body = fixture_body("order_created_cod.json")
    request = delivery(body, signature=woo_signature("the-secret-before-rotation", body))
    assert woocommerce.verify(request, store, now=NOW)


def test_the_previous_secret_no_longer_verifies_after_the_grace(store):
    store.previous_webhook_secret = "the-secret-before-rotation"
    store.webhook_secret_rotated_at = NOW - timedelta(hours=25)
    body = fixture_body("order_created_cod.json")
    request = delivery(body, signature=woo_signature("the-secret-before-rotation", body))
    assert not woocommerce.verify(request, store, now=NOW)


def test_the_creation_ping_is_recognised_without_a_signature(store):
    request = RequestFactory().post(
        URL, data=b"webhook_id=12", content_type="application/x-www-form-urlencoded", headers={}
    )
    with pytest.raises(PingDelivery):
        woocommerce.verify(request, store, now=NOW)


def test_a_form_post_with_more_than_the_webhook_id_is_not_a_ping(store):
    request = RequestFactory().post(
        URL, data=b"webhook_id=12&status=completed", content_type="application/x-www-form-urlencoded"
    )
    assert not woocommerce.verify(request, store, now=NOW)


# --- keys ---------------------------------------------------------------------------------------
def test_the_idempotency_key_is_the_delivery_id():
    request = delivery(b"{}", **{"X-WC-Webhook-Delivery-ID": "a1b2c3"})
    assert woocommerce.idempotency_key(request) == "a1b2c3"


def test_a_delivery_without_a_delivery_id_has_an_empty_key():
    request = RequestFactory().post(URL, data=b"{}", content_type="application/json")
    assert woocommerce.idempotency_key(request) == ""


def test_the_topic_is_read_from_its_header():
    assert woocommerce.topic(delivery(b"{}", topic="order.updated")) == "order.updated"


def test_the_signature_is_never_a_kept_header():
    assert "X-WC-Webhook-Signature" not in woocommerce.kept_headers
    assert "X-WC-Webhook-Delivery-ID" in woocommerce.kept_headers


# --- parse: the order ---------------------------------------------------------------------------
def test_a_created_cod_order_is_one_upsert_read_from_the_documented_fields(store):
    actions = woocommerce.parse("order.created", fixture_payload("order_created_cod.json"), store)

    assert kinds(actions) == ["upsert"]
    order = actions[0].order
    assert (order.external_id, order.number, order.currency) == ("727", "#727", "MAD")
    assert (order.payment_method, order.paid) == ("cod", False)
    assert order.total_amount == order.cod_amount == Decimal("479.00")
    assert order.placed_at == datetime(2025, 6, 10, 13, 32, 7, tzinfo=UTC)
    assert order.updated_at == actions[0].updated_at == datetime(2025, 6, 10, 13, 32, 9, tzinfo=UTC)
    assert (order.customer.name, order.customer.phone) == ("Salma El Idrissi", "0612345678")
    assert order.customer.email == "salma.elidrissi@example.com"
    assert (order.shipping_address, order.shipping_city) == ("12 Rue Ibn Battouta, Appt 4", "Casablanca")
    assert order.notes == "Appelez avant de venir, svp"


def test_line_items_become_items_with_their_unit_price_and_sku(store):
    order = woocommerce.parse("order.created", cod_order(), store)[0].order
    assert [(i.title, i.quantity, i.unit_price, i.sku) for i in order.items] == [
        ("Caftan brodé - Bleu nuit", 1, Decimal("349"), "CAF-BN-M"),
        ("Babouches en cuir", 2, Decimal("50"), "BAB-CUIR-39"),
    ]


def test_a_line_without_a_price_is_priced_from_its_total(store):
    payload = cod_order()
    del payload["line_items"][1]["price"]
    assert woocommerce.parse("order.created", payload, store)[0].order.items[1].unit_price == Decimal("50.00")


def test_a_paid_prepaid_order_is_created_prepaid_and_paid_with_nothing_to_collect(store):
    actions = woocommerce.parse("order.created", fixture_payload("order_created_prepaid.json"), store)
    order = actions[0].order
    assert (order.payment_method, order.paid, order.cod_amount) == ("prepaid", True, Decimal("0"))
    assert kinds(actions) == ["upsert"]


def test_a_prepaid_order_updated_as_paid_records_the_payment(store):
    actions = woocommerce.parse("order.updated", fixture_payload("order_created_prepaid.json"), store)
    assert kinds(actions) == ["upsert", "paid"]


def test_an_unpaid_prepaid_order_on_hold_is_not_paid(store):
    payload = fixture_payload("order_created_prepaid.json") | {"status": "on-hold", "date_paid_gmt": None}
    actions = woocommerce.parse("order.updated", payload, store)
    assert kinds(actions) == ["upsert"]
    assert not actions[0].order.paid


def test_a_cod_order_in_processing_is_not_paid(store):
    actions = woocommerce.parse("order.updated", cod_order(status="processing"), store)
    assert kinds(actions) == ["upsert"]
    assert not actions[0].order.paid


def test_the_shipping_phone_is_used_when_billing_has_none(store):
    payload = cod_order()
    payload["billing"]["phone"] = ""
    payload["shipping"]["phone"] = "0712345678"
    assert woocommerce.parse("order.created", payload, store)[0].order.customer.phone == "0712345678"


def test_checkout_opt_in_fields_become_consent_claims_with_their_evidence(store):
    customer = woocommerce.parse("order.created", cod_order(), store)[0].order.customer
    assert customer.consents == (
        ConsentClaim(channel="whatsapp", subscribed=True, field="meta_data._wc_whatsapp_opt_in", value="yes"),
        ConsentClaim(channel="sms", subscribed=False, field="meta_data.sms_opt_in", value="0"),
    )


def test_a_french_oui_is_an_opt_in(store):
    payload = cod_order(meta_data=[{"id": 1, "key": "marketing_opt_in", "value": "Oui"}])
    claims = woocommerce.parse("order.created", payload, store)[0].order.customer.consents
    assert claims == (
        ConsentClaim(channel="email", subscribed=True, field="meta_data.marketing_opt_in", value="Oui"),
    )


# --- parse: statuses ----------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["pending", "processing", "on-hold", "checkout-draft"])
def test_statuses_that_change_nothing_give_only_the_upsert(store, status):
    assert kinds(woocommerce.parse("order.updated", cod_order(status=status), store)) == ["upsert"]


def test_completed_records_the_payment(store):
    actions = woocommerce.parse("order.updated", cod_order(status="completed"), store)
    assert kinds(actions) == ["upsert", "paid"]


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        ("cancelled", "cancel", "cancelled in WooCommerce"),
        ("failed", "cancel", "payment failed"),
        ("refunded", "refund", "refunded in WooCommerce"),
    ],
)
def test_closing_statuses_map_to_their_action(store, status, kind, reason):
    actions = woocommerce.parse("order.updated", cod_order(status=status), store)
    assert [(a.kind, a.reason) for a in actions[1:]] == [(kind, reason)]
    assert actions[1].updated_at == datetime(2025, 6, 10, 13, 32, 9, tzinfo=UTC)


def test_a_custom_plugin_status_is_flagged_by_name_not_guessed(store):
    actions = woocommerce.parse("order.updated", cod_order(status="wc-awaiting-shipment"), store)
    assert kinds(actions) == ["upsert", "flag"]
    assert "wc-awaiting-shipment" in actions[1].reason


def test_a_deleted_order_is_cancelled_from_its_id_alone(store):
    actions = woocommerce.parse("order.deleted", fixture_payload("order_deleted.json"), store)
    assert [(a.kind, a.external_id, a.reason) for a in actions] == [
        ("cancel", "727", "deleted in WooCommerce")
    ]


def test_a_restored_order_is_upserted_and_flagged_for_a_human(store):
    assert kinds(woocommerce.parse("order.restored", cod_order(), store)) == ["upsert", "flag"]


def test_a_topic_livra_does_not_handle_is_unknown(store):
    with pytest.raises(UnknownTopic):
        woocommerce.parse("product.updated", cod_order(), store)


# --- parse: malformed ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([1, 2], "payload"),
        ({"number": "727"}, "id"),
        ({"id": "abc"}, "id"),
    ],
)
def test_a_payload_without_a_usable_id_is_malformed(store, payload, field):
    with pytest.raises(MalformedPayload, match=field):
        woocommerce.parse("order.created", payload, store)


def test_a_non_numeric_total_is_malformed_and_named(store):
    with pytest.raises(MalformedPayload, match="total"):
        woocommerce.parse("order.created", cod_order(total="quatre cents"), store)


def test_an_order_without_a_creation_date_is_malformed(store):
    with pytest.raises(MalformedPayload, match="date_created_gmt"):
        woocommerce.parse("order.created", cod_order(date_created_gmt=None), store)
