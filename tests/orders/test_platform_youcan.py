"""The YouCan adapter: the REST hook signature, keys without a delivery id, and the order.create payload."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import RequestFactory

from orders.platforms import MalformedPayload, UnknownTopic
from orders.platforms.youcan import YouCanPlatform
from tests.factories import StoreFactory

FIXTURES = Path(__file__).parents[1] / "fixtures" / "stores" / "youcan"
URL = "/webhooks/youcan/atlas-souk/"
NOW = datetime(2025, 6, 10, 13, 32, 10, tzinfo=UTC)
CLIENT_SECRET = "youcan-oauth-client-secret"
youcan = YouCanPlatform()


def fixture_body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_payload(name: str) -> dict:
    return json.loads(fixture_body(name))


def hex_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(body: bytes, *, signature: str | None = None, **headers):
    if signature is not None:
        headers["x-youcan-signature"] = signature
    return RequestFactory().post(URL, data=body, content_type="application/json", headers=headers)


@pytest.fixture
def store():
    return StoreFactory.build(
        slug="atlas-souk", platform="youcan", currency="MAD", platform_secret=CLIENT_SECRET
    )


def cod_order(**changes) -> dict:
    return fixture_payload("order_create_cod.json") | changes


# --- verify -------------------------------------------------------------------------------------
def test_a_hex_signature_with_the_client_secret_verifies(store):
    body = fixture_body("order_create_cod.json")
    assert youcan.verify(delivery(body, signature=hex_signature(CLIENT_SECRET, body)), store, now=NOW)


def test_an_uppercase_hex_signature_verifies(store):
    body = fixture_body("order_create_cod.json")
    signature = hex_signature(CLIENT_SECRET, body).upper()
    assert youcan.verify(delivery(body, signature=signature), store, now=NOW)


def test_a_base64_signature_of_the_same_hmac_verifies(store):
    body = fixture_body("order_create_cod.json")
    digest = hmac.new(CLIENT_SECRET.encode(), body, hashlib.sha256).digest()
    assert youcan.verify(delivery(body, signature=base64.b64encode(digest).decode()), store, now=NOW)


def test_a_signature_with_another_secret_does_not_verify(store):
    body = fixture_body("order_create_cod.json")
    assert not youcan.verify(delivery(body, signature=hex_signature("another-secret", body)), store, now=NOW)


def test_a_delivery_without_a_signature_does_not_verify(store):
    assert not youcan.verify(delivery(fixture_body("order_create_cod.json")), store, now=NOW)


def test_a_store_without_a_platform_secret_never_verifies(store):
    # given: an HMAC keyed with an empty secret, which anyone can compute
    store.platform_secret = ""
    body = fixture_body("order_create_cod.json")
    # then
    assert not youcan.verify(delivery(body, signature=hex_signature("", body)), store, now=NOW)


def test_the_livra_webhook_secret_is_not_the_youcan_signing_key(store):
    body = fixture_body("order_create_cod.json")
    request = delivery(body, signature=hex_signature(store.webhook_secret, body))
    assert not youcan.verify(request, store, now=NOW)


# --- keys ---------------------------------------------------------------------------------------
def test_the_idempotency_key_is_the_event_and_the_order_id():
    request = delivery(fixture_body("order_create_cod.json"))
    assert youcan.idempotency_key(request) == "order.create:e1f4dd96-7e1c-4cd6-b9c2-3f0a8d5b7c21"


def test_a_body_that_is_not_json_is_keyed_by_its_hash():
    body = b"not json at all"
    expected = f"sha256:{hashlib.sha256(body).hexdigest()}"
    assert youcan.idempotency_key(delivery(body)) == expected


def test_a_json_body_without_an_id_is_keyed_by_its_hash():
    body = b'{"ref": "1024"}'
    assert youcan.idempotency_key(delivery(body)) == f"sha256:{hashlib.sha256(body).hexdigest()}"


def test_the_topic_is_order_create_when_youcan_names_none():
    assert youcan.topic(delivery(b"{}")) == "order.create"


def test_the_topic_is_the_event_header_when_sent():
    assert youcan.topic(delivery(b"{}", **{"x-youcan-event": "inventory.low"})) == "inventory.low"


def test_the_signature_is_never_a_kept_header():
    assert "x-youcan-signature" not in [header.lower() for header in youcan.kept_headers]


# --- parse --------------------------------------------------------------------------------------
def test_a_created_order_is_one_upsert_read_from_the_documented_fields(store):
    actions = youcan.parse("order.create", fixture_payload("order_create_cod.json"), store)

    assert [action.kind for action in actions] == ["upsert"]
    order = actions[0].order
    assert (order.external_id, order.number, order.currency) == (
        "e1f4dd96-7e1c-4cd6-b9c2-3f0a8d5b7c21",
        "#1024",
        "MAD",
    )
    assert order.total_amount == Decimal("479")
    assert (order.customer.name, order.customer.phone) == ("Salma El Idrissi", "0612345678")
    assert order.customer.email == "salma.elidrissi@example.com"
    assert (order.shipping_address, order.shipping_city) == ("12 Rue Ibn Battouta, Appt 4", "Casablanca")


def test_the_order_was_last_updated_when_it_was_created(store):
    action = youcan.parse("order.create", cod_order(), store)[0]
    created = datetime(2025, 6, 10, 13, 32, 7, tzinfo=UTC)
    assert action.order.placed_at == action.order.updated_at == action.updated_at == created


def test_variants_become_items_with_product_name_price_and_sku(store):
    order = youcan.parse("order.create", cod_order(), store)[0].order
    assert [(i.title, i.quantity, i.unit_price, i.sku) for i in order.items] == [
        ("Caftan brodé - Bleu nuit", 1, Decimal("349"), "CAF-BN-M"),
        ("Babouches en cuir", 2, Decimal("50"), "BAB-CUIR-39"),
    ]


def test_the_cod_gateway_makes_a_cash_on_delivery_order(store):
    order = youcan.parse("order.create", cod_order(), store)[0].order
    assert (order.payment_method, order.paid, order.cod_amount) == ("cod", False, Decimal("479"))


def test_an_order_paid_online_is_prepaid_and_paid(store):
    order = youcan.parse("order.create", fixture_payload("order_create_paid.json"), store)[0].order
    assert (order.payment_method, order.paid, order.cod_amount) == ("prepaid", True, Decimal("0"))


def test_a_gateway_the_store_names_as_cod_is_cash_on_delivery(store):
    store.cod_gateway_names = ["paiement à la livraison"]
    payload = cod_order(
        payment={"status": 1, "status_text": "pending", "payload": {"gateway": "Paiement à la livraison"}}
    )
    assert youcan.parse("order.create", payload, store)[0].order.payment_method == "cod"


def test_an_unpaid_order_without_a_gateway_is_cash_on_delivery(store):
    payload = cod_order(payment={"status": 1, "status_text": "pending"})
    assert youcan.parse("order.create", payload, store)[0].order.payment_method == "cod"


def test_a_paid_order_without_a_gateway_is_prepaid(store):
    payload = cod_order(payment={"status": 2, "status_text": "paid"})
    order = youcan.parse("order.create", payload, store)[0].order
    assert (order.payment_method, order.paid) == ("prepaid", True)


def test_the_customer_phone_falls_back_to_the_shipping_address(store):
    payload = cod_order()
    payload["customer"]["phone"] = None
    payload["shipping"]["address"][0]["phone"] = "0712345678"
    assert youcan.parse("order.create", payload, store)[0].order.customer.phone == "0712345678"


def test_any_other_youcan_event_is_an_unknown_topic(store):
    with pytest.raises(UnknownTopic):
        youcan.parse("inventory.low", {"id": "x"}, store)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": None}, "id"),
        ({"total": "beaucoup"}, "total"),
        ({"created_at": "hier"}, "created_at"),
        ({"variants": {"not": "a list"}}, "variants"),
        ({"customer": "Salma"}, "customer"),
    ],
)
def test_a_malformed_order_names_the_field(store, changes, field):
    with pytest.raises(MalformedPayload, match=field):
        youcan.parse("order.create", cod_order(**changes), store)


def test_a_payload_that_is_not_an_object_is_malformed(store):
    with pytest.raises(MalformedPayload, match="payload"):
        youcan.parse("order.create", ["order"], store)
