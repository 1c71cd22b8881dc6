"""Livra's generic signed JSON webhook: timestamped signatures, the replay window, and strict bodies."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import RequestFactory

from orders.platforms import ConsentClaim, IncomingShipment, MalformedPayload, UnknownTopic
from orders.platforms.generic import GenericPlatform
from tests.factories import StoreFactory

FIXTURES = Path(__file__).parents[1] / "fixtures" / "stores" / "generic"
URL = "/webhooks/generic/atlas-souk/"
NOW = datetime(2025, 6, 10, 13, 32, 10, tzinfo=UTC)
generic = GenericPlatform()


def fixture_body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_payload(name: str) -> dict:
    return json.loads(fixture_body(name))


def livra_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def delivery(body: bytes, *, secret: str | None = None, signed_at: datetime = NOW, **headers):
    """A delivery as a custom store sends it, signed with ``secret`` at ``signed_at``."""
    timestamp = str(int(signed_at.timestamp()))
    livra_headers = {
        "X-Livra-Topic": "order.created",
        "X-Livra-Event-Id": "evt_01J0ABCDEF",
        "X-Livra-Timestamp": timestamp,
    }
    if secret is not None:
        livra_headers["X-Livra-Signature"] = livra_signature(secret, timestamp, body)
    return RequestFactory().post(
        URL, data=body, content_type="application/json", headers=livra_headers | headers
    )


@pytest.fixture
def store():
    return StoreFactory.build(slug="atlas-souk", platform="custom", currency="MAD")


def order_payload(**changes) -> dict:
    return fixture_payload("order_created.json") | changes


# --- verify -------------------------------------------------------------------------------------
def test_a_delivery_signed_now_with_the_store_secret_verifies(store):
    request = delivery(fixture_body("order_created.json"), secret=store.webhook_secret)
    assert generic.verify(request, store, now=NOW)


def test_a_delivery_signed_with_another_secret_does_not_verify(store):
    request = delivery(fixture_body("order_created.json"), secret="another-secret")
    assert not generic.verify(request, store, now=NOW)


def test_a_delivery_without_a_signature_does_not_verify(store):
    assert not generic.verify(delivery(fixture_body("order_created.json")), store, now=NOW)


def test_a_delivery_without_a_timestamp_does_not_verify(store):
    body = fixture_body("order_created.json")
    request = delivery(body, secret=store.webhook_secret, **{"X-Livra-Timestamp": ""})
    assert not generic.verify(request, store, now=NOW)


def test_the_timestamp_is_part_of_what_is_signed(store):
    # given: a valid delivery whose timestamp header is moved by one second
    body = fixture_body("order_created.json")
    request = delivery(
        body, secret=store.webhook_secret, **{"X-Livra-Timestamp": str(int(NOW.timestamp()) + 1)}
    )
    # then
    assert not generic.verify(request, store, now=NOW)


def test_a_delivery_signed_four_minutes_ago_still_verifies(store):
    request = delivery(b"{}", secret=store.webhook_secret, signed_at=NOW - timedelta(minutes=4))
    assert generic.verify(request, store, now=NOW)


def test_a_delivery_signed_more_than_five_minutes_ago_is_a_replay(store):
    request = delivery(b"{}", secret=store.webhook_secret, signed_at=NOW - timedelta(minutes=5, seconds=1))
    assert not generic.verify(request, store, now=NOW)


def test_a_delivery_signed_more_than_five_minutes_in_the_future_is_refused(store):
    request = delivery(b"{}", secret=store.webhook_secret, signed_at=NOW + timedelta(minutes=5, seconds=1))
    assert not generic.verify(request, store, now=NOW)


def test_the_previous_secret_verifies_during_the_rotation_grace(store):
    store.previous_webhook_secret = "the-secret-before-rotation"
    store.webhook_secret_rotated_at = NOW - timedelta(hours=1)
    request = delivery(b"{}", secret="the-secret-before-rotation")
    assert generic.verify(request, store, now=NOW)


def test_the_previous_secret_no_longer_verifies_after_the_grace(store):
    store.previous_webhook_secret = "the-secret-before-rotation"
    store.webhook_secret_rotated_at = NOW - timedelta(hours=25)
    request = delivery(b"{}", secret="the-secret-before-rotation")
    assert not generic.verify(request, store, now=NOW)


# --- keys ---------------------------------------------------------------------------------------
def test_the_idempotency_key_is_the_event_id():
    assert generic.idempotency_key(delivery(b"{}")) == "evt_01J0ABCDEF"


def test_a_delivery_without_an_event_id_has_an_empty_key():
    assert generic.idempotency_key(delivery(b"{}", **{"X-Livra-Event-Id": ""})) == ""


def test_the_topic_is_read_from_its_header():
    assert generic.topic(delivery(b"{}", **{"X-Livra-Topic": "order.shipped"})) == "order.shipped"


def test_the_signature_is_never_a_kept_header():
    assert "X-Livra-Signature" not in generic.kept_headers


# --- parse --------------------------------------------------------------------------------------
def test_a_created_order_is_one_upsert_with_every_field(store):
    actions = generic.parse("order.created", fixture_payload("order_created.json"), store)

    assert [action.kind for action in actions] == ["upsert"]
    order = actions[0].order
    assert (order.external_id, order.number, order.currency) == ("A-20250610-0042", "#1042", "MAD")
    assert (order.payment_method, order.paid) == ("cod", False)
    assert order.total_amount == order.cod_amount == Decimal("479.00")
    assert order.placed_at == datetime(2025, 6, 10, 13, 32, 7, tzinfo=UTC)
    assert actions[0].updated_at == order.updated_at == datetime(2025, 6, 10, 13, 32, 9, tzinfo=UTC)
    assert (order.customer.name, order.customer.phone, order.customer.language) == (
        "Salma El Idrissi",
        "0612345678",
        "fr",
    )
    assert [(i.title, i.quantity, i.unit_price) for i in order.items] == [
        ("Caftan brodé - Bleu nuit", 1, Decimal("349.00")),
        ("Babouches en cuir", 2, Decimal("50.00")),
    ]
    assert (order.shipping_city, order.tags) == ("Casablanca", ("instagram",))


def test_consents_become_claims_with_where_they_were_read(store):
    customer = generic.parse("order.created", order_payload(), store)[0].order.customer
    assert customer.consents == (
        ConsentClaim(
            channel="whatsapp", subscribed=True, field="customer.consents[0].subscribed", value="true"
        ),
        ConsentClaim(
            channel="email", subscribed=False, field="customer.consents[1].subscribed", value="false"
        ),
    )


def test_a_cod_order_without_a_cod_amount_collects_the_total(store):
    payload = order_payload()
    del payload["cod_amount"]
    assert generic.parse("order.created", payload, store)[0].order.cod_amount == Decimal("479.00")


def test_a_paid_prepaid_order_is_upserted_paid_and_recorded_as_paid(store):
    payload = order_payload(payment_method="prepaid", paid=True, cod_amount="0")
    actions = generic.parse("order.updated", payload, store)
    assert [action.kind for action in actions] == ["upsert", "paid"]
    assert (actions[0].order.paid, actions[0].order.cod_amount) == (True, Decimal("0"))


def test_a_new_paid_prepaid_order_is_upserted_paid_without_a_separate_paid_action(store):
    actions = generic.parse(
        "order.created", order_payload(payment_method="prepaid", paid=True, cod_amount="0"), store
    )
    assert [action.kind for action in actions] == ["upsert"]
    assert actions[0].order.paid is True


def test_a_cod_order_marked_paid_means_the_cash_was_collected(store):
    actions = generic.parse("order.updated", order_payload(paid=True), store)
    assert [action.kind for action in actions] == ["upsert", "paid"]
    assert actions[0].order.paid is False  # COD orders are never "paid" at creation in Livra's terms


def test_a_cancelled_order_is_cancelled_with_its_reason(store):
    actions = generic.parse("order.cancelled", fixture_payload("order_cancelled.json"), store)
    assert [(a.kind, a.external_id, a.reason) for a in actions] == [
        ("cancel", "A-20250610-0042", "customer changed their mind")
    ]
    assert actions[0].updated_at == datetime(2025, 6, 10, 15, 1, 30, tzinfo=UTC)


def test_a_shipped_order_carries_its_shipment(store):
    actions = generic.parse("order.shipped", fixture_payload("order_shipped.json"), store)
    assert [action.kind for action in actions] == ["shipment"]
    assert actions[0].shipment == IncomingShipment(
        carrier="Amana",
        tracking_number="CX123456789MA",
        tracking_url="https://www.amana.ma/suivi?code=CX123456789MA",
    )


def test_a_shipment_without_a_tracking_number_is_malformed(store):
    payload = fixture_payload("order_shipped.json")
    del payload["shipment"]["tracking_number"]
    with pytest.raises(MalformedPayload, match=r"shipment\.tracking_number"):
        generic.parse("order.shipped", payload, store)


@pytest.mark.parametrize("topic", ["order.delivered", "order.refunded", ""])
def test_topics_outside_the_format_are_unknown(store, topic):
    with pytest.raises(UnknownTopic):
        generic.parse(topic, order_payload(), store)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": None}, "id"),
        ({"number": ""}, "number"),
        ({"payment_method": "card"}, "payment_method"),
        ({"paid": "yes"}, "paid"),
        ({"currency": "dirham"}, "currency"),
        ({"total_amount": "479,00"}, "total_amount"),
        ({"total_amount": "-1"}, "total_amount"),
        ({"total_amount": "479.001"}, "total_amount"),
        ({"cod_amount": "500.00"}, "cod_amount"),
        ({"placed_at": "2025-06-10T14:32:07"}, "placed_at"),
        ({"updated_at": None}, "updated_at"),
        ({"customer": None}, "customer"),
        ({"items": [{"title": "Caftan", "quantity": 0, "unit_price": "1"}]}, r"items\[0\]\.quantity"),
        ({"tags": "instagram"}, "tags"),
    ],
)
def test_a_malformed_order_names_the_field(store, changes, field):
    with pytest.raises(MalformedPayload, match=field):
        generic.parse("order.created", order_payload(**changes), store)


def test_a_customer_without_a_name_is_malformed(store):
    payload = order_payload()
    payload["customer"]["name"] = ""
    with pytest.raises(MalformedPayload, match=r"customer\.name"):
        generic.parse("order.created", payload, store)


def test_a_consent_on_an_unknown_channel_is_malformed(store):
    payload = order_payload()
    payload["customer"]["consents"] = [{"channel": "pigeon", "subscribed": True}]
    with pytest.raises(MalformedPayload, match=r"customer\.consents\[0\]\.channel"):
        generic.parse("order.created", payload, store)


def test_a_prepaid_order_with_cash_to_collect_is_malformed(store):
    with pytest.raises(MalformedPayload, match="cod_amount"):
        generic.parse("order.created", order_payload(payment_method="prepaid"), store)


def test_a_payload_that_is_not_an_object_is_malformed(store):
    with pytest.raises(MalformedPayload, match="payload"):
        generic.parse("order.created", "order", store)
