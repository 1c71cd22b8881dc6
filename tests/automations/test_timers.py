"""Timers: started when an order enters a status, dead as soon as it leaves it."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from automations.models import QueueEntry, Rule, Timer, Trigger
from automations.services.engine import status_entry_rules, timers_for_status_entry
from messaging.models import Notification
from orders.models import OrderEvent
from orders.platforms import IncomingShipment, StoreAction
from orders.services import order_create, order_transition
from orders.services.ingest import store_actions_apply
from orders.transitions import OrderStatus
from tests.factories import CustomerFactory, OrderFactory, StoreFactory, order_in_status

pytestmark = pytest.mark.django_db

S = OrderStatus
SYSTEM = OrderEvent.Source.SYSTEM
NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
WAITING_FOR_AN_ANSWER = {
    "cod-reminder": timedelta(minutes=30),
    "cod-queue": timedelta(hours=2),
    "cod-cancel-unconfirmed": timedelta(hours=24),
    "cod-high-value-to-agent": timedelta(hours=24),
}


def timers_of(order, **filters) -> dict[str, Timer]:
    return {
        timer.rule.key: timer for timer in Timer.objects.filter(order=order, **filters).select_related("rule")
    }


def move(order, name: str):
    order_transition(order, name, source=SYSTEM)
    order.refresh_from_db()
    return order


# --- starting ---------------------------------------------------------------------------------
def test_entering_awaiting_confirmation_starts_one_pending_timer_per_waiting_default_rule(awaiting):
    with time_machine.travel(NOW, tick=False):
        order = awaiting()

    timers = timers_of(order)
    assert {key: timer.due_at - NOW for key, timer in timers.items()} == WAITING_FOR_AN_ANSWER
    assert {(t.state, t.status, t.status_version) for t in timers.values()} == {
        (Timer.State.PENDING, S.AWAITING_CONFIRMATION, order.status_version)
    }


def test_a_disabled_rule_starts_no_timer(store, awaiting, default_rule):
    Rule.objects.filter(pk=default_rule("cod-reminder").pk).update(enabled=False)

    order = awaiting()

    assert "cod-reminder" not in timers_of(order)
    assert len(timers_of(order)) == 3


def test_a_rule_of_another_store_starts_no_timer(store, awaiting):
    other_store = StoreFactory()  # with its own default rules

    order = awaiting()

    assert Rule.objects.filter(store=other_store).exists()
    assert {timer.rule.store_id for timer in Timer.objects.filter(order=order)} == {store.pk}


def test_a_replayed_status_entry_keeps_its_timers(awaiting):
    order = awaiting()
    first = {key: timer.pk for key, timer in timers_of(order).items()}

    timers_for_status_entry(order, status_entry_rules(order))

    assert {key: timer.pk for key, timer in timers_of(order).items()} == first


def test_an_order_placed_through_order_create_starts_the_timers_waiting_on_placed(store):
    Rule.objects.create(
        store=store,
        name="Nobody looked at it",
        trigger=Trigger.IN_STATUS_FOR,
        status=S.PLACED,
        delay_minutes=15,
        actions=[{"type": "queue", "reason": "still placed"}],
    )
    customer = CustomerFactory(store=store)

    with time_machine.travel(NOW, tick=False):
        order_create(OrderFactory.build(store=store, customer=customer), source=OrderEvent.Source.STORE)

    # (The store's default rules then ask the customer to confirm; the placed timer is already there.)
    timer = Timer.objects.get(order__customer=customer, status=S.PLACED)
    assert (timer.status, timer.status_version, timer.due_at) == (S.PLACED, 0, NOW + timedelta(minutes=15))


# --- dying ------------------------------------------------------------------------------------
def test_leaving_the_status_marks_its_pending_timers_dead(awaiting):
    order = awaiting()

    move(order, "confirm")

    assert {(t.state, t.outcome) for t in timers_of(order).values()} == {
        (Timer.State.DEAD, "the order moved on")
    }


def test_a_confirmed_order_leaves_no_pending_timers(awaiting, reply):
    order = awaiting()

    reply(order, button_payload=f"confirm:{order.pk}")

    order.refresh_from_db()
    assert order.status == S.CONFIRMED
    assert not Timer.objects.filter(order=order, state=Timer.State.PENDING).exists()


def test_a_customer_who_confirmed_is_neither_reminded_nor_queued_nor_cancelled(awaiting, reply, sweep_after):
    order = awaiting()
    reply(order, "wakha")
    notifications = Notification.objects.filter(order=order).count()

    run = sweep_after(timedelta(hours=25))

    order.refresh_from_db()
    assert (run.fired, order.status) == (0, S.CONFIRMED)
    assert Notification.objects.filter(order=order).count() == notifications
    assert not QueueEntry.objects.filter(order=order).exists()


def test_a_cancelled_order_leaves_no_pending_timers(awaiting, reply):
    order = awaiting()

    reply(order, "mabghitch")

    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert not Timer.objects.filter(order=order, state=Timer.State.PENDING).exists()


def test_timers_of_other_orders_stay_pending(awaiting):
    order, other = awaiting(), awaiting()

    move(order, "confirm")

    assert {t.state for t in timers_of(other).values()} == {Timer.State.PENDING}


# --- entering again ---------------------------------------------------------------------------
def test_re_entering_a_status_starts_new_timers_for_the_new_status_version(store):
    Rule.objects.create(
        store=store,
        name="Out for delivery for a day",
        trigger=Trigger.IN_STATUS_FOR,
        status=S.OUT_FOR_DELIVERY,
        delay_minutes=24 * 60,
        actions=[{"type": "queue", "reason": "still out for delivery"}],
    )
    order = order_in_status(S.OUT_FOR_DELIVERY, store=store)
    first_entry = order.status_version

    move(order, "fail_delivery")
    move(order, "reschedule_delivery")

    timers = Timer.objects.filter(order=order, rule__name="Out for delivery for a day").order_by(
        "status_version"
    )
    assert [(t.status_version, t.state) for t in timers] == [
        (first_entry, Timer.State.DEAD),
        (order.status_version, Timer.State.PENDING),
    ]
    assert order.status_version == first_entry + 2


# --- shipment stale ---------------------------------------------------------------------------
def test_entering_shipped_starts_a_72_hour_shipment_stale_timer(store, awaiting):
    order = awaiting()
    move(order, "confirm")

    with time_machine.travel(NOW, tick=False):
        move(order, "ship")

    [timer] = timers_of(order, state=Timer.State.PENDING).values()
    assert (timer.rule.key, timer.status, timer.due_at) == (
        "shipment-stale",
        S.SHIPPED,
        NOW + timedelta(hours=72),
    )


def test_no_shipment_stale_timer_starts_before_the_order_is_in_flight(awaiting):
    order = awaiting()

    move(order, "confirm")

    assert not Timer.objects.filter(order=order, rule__key="shipment-stale").exists()


@pytest.mark.parametrize("carrier_move", ["mark_in_transit", "mark_out_for_delivery"])
def test_every_carrier_move_in_flight_restarts_the_shipment_stale_timer(carrier_move):
    order = order_in_status(S.SHIPPED)

    move(order, carrier_move)

    timers = Timer.objects.filter(order=order, rule__key="shipment-stale").order_by("status_version")
    assert [(t.status, t.state) for t in timers] == [
        (S.SHIPPED, Timer.State.DEAD),
        (order.status, Timer.State.PENDING),
    ]


@pytest.mark.parametrize("landing", ["deliver", "initiate_return"])
def test_leaving_flight_ends_the_shipment_stale_timer(landing):
    order = order_in_status(S.IN_TRANSIT)

    move(order, landing)

    pending = Timer.objects.filter(order=order, state=Timer.State.PENDING)
    assert not pending.filter(rule__trigger=Trigger.SHIPMENT_STALE).exists()


def test_a_carrier_report_without_a_status_change_restarts_the_shipment_stale_wait(sweep_after):
    order = order_in_status(S.IN_TRANSIT)
    scan = StoreAction(
        kind="shipment",
        external_id=order.external_id,
        shipment=IncomingShipment(status="in_transit", carrier="Amana", tracking_number="LV123456789MA"),
    )
    with time_machine.travel(timezone.now() + timedelta(hours=70), tick=False):
        store_actions_apply(order.store, [scan], source=OrderEvent.Source.CARRIER)

    sweep_after(timedelta(hours=72, minutes=1))

    assert not OrderEvent.objects.filter(order=order, type="automation_team_alerted").exists()
