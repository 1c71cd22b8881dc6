"""The demo's path, end to end, through real parts: an ops agent dispatches a confirmed COD order
from the order list, a Celery worker creates its parcel at the sandbox carrier, the sandbox's walk
posts signed events to Livra's carrier webhook (a live server), the worker applies them from the
inbox and sends the customer's messages, and the carrier's statement reconciles the cash.
PostgreSQL, Redis and a worker process: each hand-over crosses a commit and the broker."""

import random
from decimal import Decimal

import pytest
from django.urls import reverse

from carriers.models import RemittanceStatus, SandboxParcel, Shipment, TrackingEvent
from carriers.selectors import carrier_account_remittance_totals, shipment_remittance
from carriers.services import sandbox_parcels_walk, sandbox_walk_settings_for
from carriers.services.remittance import remittance_statement_import
from messaging.models import Message
from orders.models import Order
from orders.transitions import OrderStatus
from tests.celery_worker import wait_for
from tests.factories import CarrierAccountFactory, order_in_status

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

SECRET = "demo-path-webhook-secret"
SENT = ("sent", "delivered", "read")


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch):
    monkeypatch.setenv("LIVRA_SBX_WEBHOOK_SECRET", SECRET)


@pytest.fixture
def livra(live_server, settings):
    settings.LIVRA_SANDBOX_CARRIER_WEBHOOK_BASE = live_server.url
    return live_server


def straight_to_the_door(account) -> None:
    """The sandbox's rates for this account: no failed attempt, refusal or loss."""
    walk = sandbox_walk_settings_for(account)
    walk.failed_attempt_share = walk.refused_share = walk.lost_share = 0
    walk.save()


def walk_one_step_and_wait_for_the_worker(rng: random.Random) -> bool:
    """One step of the parcel's life, posted to the webhook; back once the worker applied it."""
    parcel = SandboxParcel.objects.exclude(next_step_at=None).first()
    if parcel is None:
        return False
    before = TrackingEvent.objects.count()
    result = sandbox_parcels_walk(now=parcel.next_step_at, rng=rng)
    assert result.failed == 0
    wait_for(
        lambda: TrackingEvent.objects.count() > before or None,
        what="the worker to apply the carrier's event from the inbox",
    )
    return True


def test_a_confirmed_cod_order_is_dispatched_delivered_and_its_cash_reconciled(
    livra, celery_worker, admin_client
):
    account = CarrierAccountFactory()
    straight_to_the_door(account)
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    assert (order.cod_amount, order.currency) == (Decimal("249.00"), "MAD")
    order.customer.language = "en"  # the customer reads English (a French one gets "249,00 MAD")
    order.customer.save(update_fields=["language"])

    # An ops agent selects the order and picks "Create parcels at …": the worker creates it.
    response = admin_client.post(
        reverse("admin:orders_order_changelist"),
        {"action": f"dispatch_to_account_{account.pk}", "_selected_action": [order.pk]},
    )
    assert response.status_code == 302
    shipment = wait_for(
        lambda: Shipment.objects.filter(order=order, create_status="created").first(),
        what="the worker to create the parcel at the sandbox carrier",
    )
    assert shipment.tracking_number.startswith("SBX")
    wait_for(  # the store ships at creation: the batch moves the order once the parcel exists
        lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.SHIPPED).first(),
        what="the worker to mark the order shipped",
    )

    # The sandbox walks the parcel to the door, posting each step to Livra's webhook.
    rng = random.Random(7)
    while walk_one_step_and_wait_for_the_worker(rng):
        pass

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    raw_codes = list(
        TrackingEvent.objects.filter(shipment=shipment)
        .order_by("occurred_at", "id")
        .values_list("raw_code", flat=True)
    )
    assert raw_codes[-2:] == ["OUT_FOR_DELIVERY", "DELIVERED"]
    on_the_way = wait_for(
        lambda: Message.objects.filter(order=order, event="out_for_delivery", status__in=SENT).first(),
        what="the worker to send the out-for-delivery message",
    )
    assert "Please keep 249.00 MAD ready." in on_the_way.body
    shipment.refresh_from_db()
    assert shipment.cod_collected_amount == Decimal("249.00")
    assert shipment_remittance(shipment).remittance_status == RemittanceStatus.MISSING

    # The carrier pays the cash later, with a statement: imported, the parcel is reconciled.
    statement = (
        f"Tracking;Montant;Frais;Date de versement\n{shipment.tracking_number};249,00;25,00;15/12/2026\n"
    )
    remittance_statement_import(account, "remittance.csv", statement.encode())

    assert shipment_remittance(shipment).remittance_status == RemittanceStatus.REMITTED
    totals = carrier_account_remittance_totals(account.__class__.objects.filter(pk=account.pk)).get()
    assert (totals.collected, totals.remitted, totals.pending) == (
        Decimal("249.00"),
        Decimal("249.00"),
        Decimal("0.00"),
    )
