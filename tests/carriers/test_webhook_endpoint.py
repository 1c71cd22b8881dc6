"""Carriers' pushes at /webhooks/carriers/<carrier>/<account>/: verified, kept raw in the store
inbox once, answered at once, applied by the inbox drain."""

import logging
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.models import Timer, Trigger
from carriers.adapters import TrackingUpdate, adapter_class
from carriers.adapters.sandbox import SIGNATURE_HEADER, SandboxCarrier, sign
from carriers.models import Shipment, TrackingEvent
from orders.models import StoreDelivery
from orders.services import order_transition
from orders.transitions import OrderStatus
from tests.carriers.helpers import at
from tests.factories import CarrierAccountFactory, ShipmentFactory
from tests.fakes.carrier_yalidine import FakeYalidine

pytestmark = pytest.mark.django_db

SECRET = "sandbox-webhook-secret"


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch):
    monkeypatch.setenv("LIVRA_SBX_WEBHOOK_SECRET", SECRET)


@pytest.fixture
def push(client, django_capture_on_commit_callbacks):
    """POST to an account's carrier webhook and run what its commit queues (the drain, inline)."""

    def push(account, body: bytes, headers: dict | None = None, *, path=None, query="", method="post"):
        url = reverse("carriers:carrier-webhook", args=[path or account.carrier, account.pk])
        with django_capture_on_commit_callbacks(execute=True):
            send = getattr(client, method)
            if method == "get":
                return send(f"{url}?{query}", headers=headers or {})
            return send(
                f"{url}?{query}" if query else url,
                data=body,
                content_type="application/json",
                headers=headers or {},
            )

    return push


def sandbox_push(shipment, raw_code: str, hours: float = 1, event_id: str = "") -> tuple[bytes, dict]:
    update = TrackingUpdate(
        tracking_number=shipment.tracking_number,
        raw_code=raw_code,
        occurred_at=at(hours),
        event_id=event_id or f"{shipment.tracking_number}-{raw_code}",
    )
    body = SandboxCarrier().webhook_body([update])
    return body, {SIGNATURE_HEADER: sign(SECRET, body)}


def test_a_signed_push_is_kept_in_the_inbox_and_moves_the_order(push):
    shipment = ShipmentFactory()
    body, headers = sandbox_push(shipment, "PICKED_UP")

    response = push(shipment.account, body, headers)

    assert response.status_code == 200
    delivery = StoreDelivery.objects.get(pk=response.json()["delivery"])
    assert (delivery.platform, delivery.store, delivery.status) == (
        "carrier",
        shipment.order.store,
        "processed",
    )
    assert bytes(delivery.body) == body
    assert delivery.order == shipment.order
    shipment.order.refresh_from_db()
    assert shipment.order.status == OrderStatus.SHIPPED
    assert TrackingEvent.objects.get(shipment=shipment).source == TrackingEvent.Source.WEBHOOK


def test_a_push_with_a_bad_signature_is_refused_and_logged_without_its_payload(push, caplog):
    shipment = ShipmentFactory()
    body, _ = sandbox_push(shipment, "PICKED_UP")

    with caplog.at_level(logging.WARNING):
        response = push(shipment.account, body, {SIGNATURE_HEADER: sign("not-the-secret", body)})

    assert response.status_code == 401
    assert not StoreDelivery.objects.exists()
    assert "bad or missing signature" in caplog.text
    assert shipment.tracking_number not in caplog.text


def test_the_same_push_twice_is_kept_once_and_answered_as_a_duplicate(push):
    shipment = ShipmentFactory()
    body, headers = sandbox_push(shipment, "PICKED_UP")

    first = push(shipment.account, body, headers)
    second = push(shipment.account, body, headers)

    assert second.status_code == 200
    assert second.json() == {"delivery": first.json()["delivery"], "duplicate": True}
    assert StoreDelivery.objects.count() == 1
    assert TrackingEvent.objects.count() == 1


def test_a_push_for_an_unknown_account_or_the_wrong_carrier_is_not_found(push):
    account = CarrierAccountFactory()

    assert push(account, b"{}", path="yalidine").status_code == 404
    account.enabled = False
    account.save()
    assert push(account, b"{}").status_code == 404


def test_an_unreadable_signed_push_is_kept_and_flagged(push):
    account = CarrierAccountFactory()
    body = b"<html>not json</html>"

    response = push(account, body, {SIGNATURE_HEADER: sign(SECRET, body)})

    delivery = StoreDelivery.objects.get(pk=response.json()["delivery"])
    assert delivery.status == StoreDelivery.Status.FLAGGED
    assert "unreadable sandbox webhook" in delivery.notes[0]


def test_a_push_about_a_parcel_livra_does_not_know_is_kept_and_flagged(push):
    shipment = ShipmentFactory()
    shipment.tracking_number = "SBX-UNKNOWN"
    body, headers = sandbox_push(shipment, "PICKED_UP")

    response = push(shipment.account, body, headers)

    delivery = StoreDelivery.objects.get(pk=response.json()["delivery"])
    assert delivery.status == StoreDelivery.Status.FLAGGED
    assert "SBX-UNKNOWN" in delivery.notes[-1]
    assert not TrackingEvent.objects.exists()


def test_a_push_stamps_the_shipments_last_webhook_and_pushes_its_poll_back_to_the_safety_net(push):
    shipment = ShipmentFactory(next_poll_at=timezone.now())
    body, headers = sandbox_push(shipment, "IN_TRANSIT")

    push(shipment.account, body, headers)

    shipment.refresh_from_db()
    assert shipment.last_webhook_at is not None
    assert shipment.next_poll_at > timezone.now() + timedelta(hours=5)


def test_carrier_news_restarts_the_no_news_wait(push):
    shipment = ShipmentFactory()
    order_transition(shipment.order.pk, "ship", source="system")
    order_transition(shipment.order.pk, "mark_in_transit", source="system")
    timer = Timer.objects.get(order=shipment.order, rule__trigger=Trigger.SHIPMENT_STALE, state="pending")
    Timer.objects.filter(pk=timer.pk).update(due_at=timezone.now() + timedelta(hours=1))
    body, headers = sandbox_push(shipment, "AT_HUB")  # news that moves no order

    push(shipment.account, body, headers)

    timer.refresh_from_db()
    assert timer.due_at > timezone.now() + timedelta(hours=71)


def test_yalidines_subscription_check_is_answered_with_its_token(push):
    account = CarrierAccountFactory(carrier="yalidine", env_prefix="LIVRA_YAL")
    query = FakeYalidine.challenge()

    response = push(account, b"", query=urlencode(query), method="get")

    assert response.status_code == 200
    assert response.content.decode() == query["crc_token"]


def test_a_yalidine_push_signed_as_yalidine_signs_it_moves_the_parcel(push, monkeypatch):
    account = CarrierAccountFactory(carrier="yalidine", env_prefix="LIVRA_YAL")
    shipment = ShipmentFactory(account=account, tracking_number="yal-4NQ2RT")
    with FakeYalidine() as fake:
        monkeypatch.setenv("LIVRA_YAL_WEBHOOK_SECRET", fake.webhook_secret)
        signed = fake.status_webhook("yal-4NQ2RT", "Sorti en livraison")

    response = push(account, signed.body, signed.headers)

    assert response.status_code == 200
    event = TrackingEvent.objects.get(shipment=shipment)
    assert (event.raw_code, event.state) == ("Sorti en livraison", "out_for_delivery")


def test_a_coliix_push_with_its_token_in_the_url_is_kept_without_the_token_and_polled_again(
    push, monkeypatch
):
    monkeypatch.setenv("LIVRA_COLIIX_WEBHOOK_SECRET", "url-token-1234")
    account = CarrierAccountFactory(carrier="coliix", env_prefix="LIVRA_COLIIX")
    shipment = ShipmentFactory(account=account, tracking_number="CLX123", next_poll_at=timezone.now())
    query = urlencode({"token": "url-token-1234", "code": "CLX123", "state": "Livré", "datereported": ""})

    response = push(account, b"", query=query, method="get")

    assert response.status_code == 200
    delivery = StoreDelivery.objects.get(pk=response.json()["delivery"])
    assert "url-token-1234" not in str(delivery.headers)
    assert TrackingEvent.objects.get(shipment=shipment).raw_code == "Livré"
    shipment.refresh_from_db()
    assert shipment.next_poll_at is None or shipment.next_poll_at <= timezone.now()


def test_a_coliix_push_without_its_url_token_is_refused(push, monkeypatch):
    monkeypatch.setenv("LIVRA_COLIIX_WEBHOOK_SECRET", "url-token-1234")
    account = CarrierAccountFactory(carrier="coliix", env_prefix="LIVRA_COLIIX")

    response = push(account, b"", query=urlencode({"code": "CLX123", "state": "Livré"}), method="get")

    assert response.status_code == 401


def test_shiprockets_webhook_url_names_neither_shiprocket_nor_sr_nor_kr():
    url = reverse("carriers:carrier-webhook", args=[adapter_class("shiprocket").webhook_path, 12])

    assert not any(word in url.lower() for word in ("shiprocket", "sr", "kr"))


def test_a_shiprocket_push_with_its_token_header_is_kept_and_its_token_is_not(push, monkeypatch):
    monkeypatch.setenv("LIVRA_SHIPROCKET_WEBHOOK_SECRET", "static-token-5678")
    account = CarrierAccountFactory(carrier="shiprocket", env_prefix="LIVRA_SHIPROCKET")
    body = b'{"awb": "19041424751540", "shipment_status_id": 18, "current_timestamp": "23 05 2023 11:43:52"}'

    refused = push(account, body, {"x-api-key": "wrong"}, path="in-courier")
    accepted = push(account, body, {"x-api-key": "static-token-5678"}, path="in-courier")

    assert refused.status_code == 401
    assert accepted.status_code == 200
    delivery = StoreDelivery.objects.get(pk=accepted.json()["delivery"])
    assert "static-token-5678" not in str(delivery.headers)


def test_a_shipment_is_not_polled_once_a_push_says_it_is_delivered(push):
    shipment = ShipmentFactory(next_poll_at=timezone.now())
    body, headers = sandbox_push(shipment, "DELIVERED")

    push(shipment.account, body, headers)

    assert Shipment.objects.get(pk=shipment.pk).next_poll_at is None


def test_the_account_page_shows_the_webhook_url_to_give_the_carrier(admin_client, monkeypatch):
    monkeypatch.setenv("LIVRA_COLIIX_WEBHOOK_SECRET", "url-token-1234")
    account = CarrierAccountFactory(carrier="coliix", env_prefix="LIVRA_COLIIX")

    page = admin_client.get(
        reverse("admin:carriers_carrieraccount_change", args=[account.pk])
    ).content.decode()

    assert f"/webhooks/carriers/coliix/{account.pk}/?token=&lt;LIVRA_COLIIX_WEBHOOK_SECRET&gt;" in page
    assert "url-token-1234" not in page
