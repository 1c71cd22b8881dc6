"""order_transitions_apply: many orders' moves at once, recorded and followed as order_transition's."""

import pytest
from django.db import transaction

from automations.models import Rule, Timer, Trigger
from messaging.models import Notification
from orders.models import Order, OrderEvent
from orders.services import Move, order_transition, order_transitions_apply
from orders.signals import status_entered
from orders.transitions import OrderStatus
from tests.factories import StoreFactory, order_in_status

pytestmark = pytest.mark.django_db
S = OrderStatus
CARRIER = OrderEvent.Source.CARRIER


def locked(*orders) -> list[Order]:
    """The orders as order_transitions_apply's callers hand them over: read under their row locks."""
    rows = Order.objects.select_for_update(of=("self",)).select_related("store", "customer")
    by_id = rows.in_bulk([order.pk for order in orders])
    return [by_id[order.pk] for order in orders]


def in_transit(count: int, store=None) -> list[Order]:
    store = store or StoreFactory()
    return [order_in_status(S.IN_TRANSIT, store=store) for _ in range(count)]


def out_for_delivery(orders, **move) -> list:
    with transaction.atomic():
        return order_transitions_apply(
            [Move(order, "mark_out_for_delivery", **move) for order in locked(*orders)], source=CARRIER
        )


def test_each_order_moves_with_its_own_event_as_order_transition_records_it():
    orders = in_transit(3)

    events = out_for_delivery(orders, reason="with the courier", payload={"raw": "OFD"})

    for order, event in zip(orders, events, strict=True):
        order.refresh_from_db()
        assert order.status == S.OUT_FOR_DELIVERY
        assert event.pk is not None
        assert (event.order_id, event.transition, event.from_status, event.to_status) == (
            order.pk,
            "mark_out_for_delivery",
            S.IN_TRANSIT,
            S.OUT_FOR_DELIVERY,
        )
        assert (event.source, event.reason, event.payload) == (CARRIER, "with the courier", {"raw": "OFD"})
        assert event.status_version == order.status_version
        assert order.status_changed_at == event.order.status_changed_at is not None


def test_an_order_the_transition_cannot_apply_to_is_left_as_it_is():
    moving, delivered = in_transit(1)[0], order_in_status(S.DELIVERED)

    events = out_for_delivery([moving, delivered])

    assert events[0] is not None and events[1] is None
    delivered.refresh_from_db()
    assert delivered.status == S.DELIVERED
    assert not delivered.events.filter(transition="mark_out_for_delivery").exists()


def test_a_key_applied_before_returns_the_first_event_and_changes_nothing():
    order = in_transit(1)[0]
    first = order_transition(order, "mark_out_for_delivery", source=CARRIER, idempotency_key="ofd-1")
    version = Order.objects.get(pk=order.pk).status_version

    with transaction.atomic():
        [again] = order_transitions_apply(
            [Move(locked(order)[0], "fail_delivery", idempotency_key="ofd-1")], source=CARRIER
        )

    assert again == first
    assert Order.objects.get(pk=order.pk).status_version == version


def test_one_move_per_order():
    order = in_transit(1)[0]

    with pytest.raises(ValueError, match="one move per order"), transaction.atomic():
        [row] = locked(order)
        order_transitions_apply([Move(row, "mark_out_for_delivery"), Move(row, "deliver")], source=CARRIER)


def test_the_store_rules_tell_each_customer_and_start_the_timers_of_the_new_status():
    store = StoreFactory()
    Rule.objects.create(
        store=store,
        name="Still out after a day",
        trigger=Trigger.IN_STATUS_FOR,
        status=S.OUT_FOR_DELIVERY,
        delay_minutes=24 * 60,
        actions=[{"type": "queue", "reason": "out for a day"}],
    )
    orders = in_transit(4, store)

    out_for_delivery(orders)

    for order in orders:
        assert Notification.objects.filter(order=order, event="out_for_delivery").count() == 1
        assert (
            Timer.objects.filter(order=order, rule__name="Still out after a day", state="pending").count()
            == 1
        )


def test_the_timers_of_the_status_left_die():
    store = StoreFactory()
    Rule.objects.create(
        store=store,
        name="In transit for a week",
        trigger=Trigger.IN_STATUS_FOR,
        status=S.IN_TRANSIT,
        delay_minutes=7 * 24 * 60,
        actions=[{"type": "queue", "reason": "slow parcel"}],
    )
    orders = in_transit(2, store)
    waiting = Timer.objects.filter(order__in=orders, rule__name="In transit for a week")
    assert set(waiting.values_list("state", flat=True)) == {"pending"}

    out_for_delivery(orders)

    assert set(waiting.values_list("state", flat=True)) == {"dead"}


def test_status_entered_is_sent_once_for_the_whole_batch():
    orders = in_transit(3)
    sent = []

    def listen(sender, entries, **kwargs):
        sent.append([(order.pk, event.to_status) for order, event in entries])

    status_entered.connect(listen, sender=Order)
    try:
        out_for_delivery(orders)
    finally:
        status_entered.disconnect(listen, sender=Order)

    assert sent[0] == [(order.pk, S.OUT_FOR_DELIVERY) for order in orders]


def test_a_failing_rule_undoes_every_move_of_the_batch():
    orders = in_transit(2)

    def broken_rules(**kwargs):
        raise RuntimeError("the rules engine is down")

    status_entered.connect(broken_rules, sender=Order)
    try:
        with pytest.raises(RuntimeError):
            out_for_delivery(orders)
    finally:
        status_entered.disconnect(broken_rules, sender=Order)

    assert set(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True)) == {
        S.IN_TRANSIT
    }
    assert not OrderEvent.objects.filter(transition="mark_out_for_delivery").exists()
