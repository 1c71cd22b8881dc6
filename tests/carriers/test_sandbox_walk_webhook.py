"""End to end: the sandbox carrier's walk posts signed events to Livra's real carrier webhook (a live
server), the inbox drain applies them, and the order follows its parcel."""

import random
import socket
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from carriers.adapters.sandbox import SIGNATURE_HEADER, SandboxCarrier, sign
from carriers.demo import ACCOUNT_NAME
from carriers.models import SandboxParcel, SandboxParcelEvent, Shipment, TrackingEvent
from carriers.services import sandbox_parcels_walk, sandbox_walk_settings_for, shipment_create
from carriers.services.sandbox_walk import sandbox_webhook_url
from messaging.models import Message
from orders.transitions import OrderStatus
from tests.factories import CarrierAccountFactory, order_in_status

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SECRET = "walk-webhook-secret"


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch):
    monkeypatch.setenv("LIVRA_SBX_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("LIVRA_SANDBOX_WEBHOOK_SECRET", SECRET)  # the demo's account


@pytest.fixture
def livra(live_server, settings):
    """The walk posts to the live server's carrier webhook."""
    settings.LIVRA_SANDBOX_CARRIER_WEBHOOK_BASE = live_server.url
    return live_server


@pytest.fixture
def account():
    return CarrierAccountFactory()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def rates(account, **shares):
    walk_settings = sandbox_walk_settings_for(account)
    for name, value in {"failed_attempt_share": 0, "refused_share": 0, "lost_share": 0, **shares}.items():
        setattr(walk_settings, name, value)
    walk_settings.save()


def walk_until_over(parcels, seed: int = 5) -> None:
    """Walk at each next due time until every parcel's life is over."""
    rng = random.Random(seed)
    for _ in range(60):
        due = parcels.exclude(next_step_at=None).order_by("next_step_at").first()
        if due is None:
            return
        result = sandbox_parcels_walk(now=due.next_step_at, rng=rng)
        assert result.failed == 0


def test_the_walk_posts_each_step_to_the_carrier_webhook_and_the_order_is_delivered(livra, account):
    rates(account)
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    shipment = shipment_create(order, account)

    walk_until_over(SandboxParcel.objects.all())

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    events = TrackingEvent.objects.filter(shipment=shipment).order_by("occurred_at", "id")
    assert [event.raw_code for event in events] == [
        "CREATED",
        "PICKED_UP",
        "IN_TRANSIT",
        "AT_HUB",
        "OUT_FOR_DELIVERY",
        "DELIVERED",
    ]
    assert {event.source for event in events} == {TrackingEvent.Source.WEBHOOK}
    assert not SandboxParcelEvent.objects.filter(posted_at=None).exists()
    # The store's rules told the customer, among others, that the courier is on the way with the
    # amount to have ready.
    [on_the_way] = Message.objects.filter(order=order, event="out_for_delivery")
    assert str(int(order.cod_amount)) in on_the_way.body
    assert Shipment.objects.get(pk=shipment.pk).cod_collected_amount == order.cod_amount


def test_a_parcel_refused_at_the_door_comes_back_and_the_order_is_returned(livra, account):
    rates(account, refused_share=100)
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    shipment_create(order, account)

    walk_until_over(SandboxParcel.objects.all())

    order.refresh_from_db()
    assert order.status == OrderStatus.RETURNED
    assert order.events.filter(to_status=OrderStatus.DELIVERY_FAILED).exists()


def test_a_post_that_fails_keeps_its_events_and_the_next_walk_posts_them(livra, account, settings):
    rates(account)
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    shipment_create(order, account)
    parcel = SandboxParcel.objects.get()
    settings.LIVRA_SANDBOX_CARRIER_WEBHOOK_BASE = closed_port_url()

    failed = sandbox_parcels_walk(now=parcel.next_step_at, rng=random.Random(1))

    assert (failed.stepped, failed.posted, failed.failed) == (["PICKED_UP"], 0, 2)
    waiting = SandboxParcelEvent.objects.filter(posted_at=None)
    assert [event.raw_code for event in waiting] == ["CREATED", "PICKED_UP"]
    assert all(event.post_attempts == 1 and event.post_error for event in waiting)
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED

    settings.LIVRA_SANDBOX_CARRIER_WEBHOOK_BASE = livra.url
    again = sandbox_parcels_walk(now=parcel.created_at, rng=random.Random(1))  # nothing due: posts only

    assert (again.stepped, again.posted, again.failed) == ([], 2, 0)
    assert not SandboxParcelEvent.objects.filter(posted_at=None).exists()
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED


def test_without_a_webhook_secret_the_walk_keeps_its_events_unposted(livra, account, monkeypatch):
    monkeypatch.delenv("LIVRA_SBX_WEBHOOK_SECRET")
    shipment_create(order_in_status(OrderStatus.CONFIRMED, store=account.store), account)

    result = sandbox_parcels_walk(rng=random.Random(1))

    assert (result.posted, result.failed) == (0, 1)
    assert "LIVRA_SBX_WEBHOOK_SECRET" in SandboxParcelEvent.objects.get().post_error


def test_the_webhook_refuses_the_sandboxs_events_signed_with_another_secret(livra, account):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    shipment = shipment_create(order, account)
    carrier = SandboxCarrier(account=account)
    body = carrier.webhook_body([carrier.record_event(shipment.tracking_number, "PICKED_UP")])

    response = requests.post(
        sandbox_webhook_url(account),
        data=body,
        headers={SIGNATURE_HEADER: sign("not-the-secret", body)},
        timeout=5,
    )

    assert response.status_code == 401
    assert not TrackingEvent.objects.exists()
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED


def test_the_demos_parcels_move_while_it_runs_and_their_orders_follow(livra):
    call_command("seed_demo", stdout=StringIO())
    shipments = list(Shipment.objects.filter(account__name=ACCOUNT_NAME).select_related("order"))
    assert shipments and {shipment.order.status for shipment in shipments} == {OrderStatus.SHIPPED}

    walk_until_over(SandboxParcel.objects.filter(account__name=ACCOUNT_NAME))

    finished = {OrderStatus.DELIVERED, OrderStatus.RETURNED}
    for shipment in shipments:
        shipment.order.refresh_from_db()
        lost = shipment.tracking_events.filter(raw_code="LOST").exists()
        assert shipment.order.status in finished or lost, (shipment.order.status, shipment.tracking_number)
        assert shipment.tracking_events.filter(source=TrackingEvent.Source.WEBHOOK).count() >= 3
