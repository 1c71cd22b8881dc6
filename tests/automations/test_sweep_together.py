"""Timers whose rule only writes rows of its own (queue, tag, team alert) fire a batch at a time:
set-based, in one short transaction, and one by one again if that transaction fails."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations.models import QueueEntry, Rule, Timer
from automations.services.sweep import timers_fire, timers_sweep
from orders.models import OrderEvent
from orders.services import order_transition
from orders.transitions import OrderStatus
from tests.automations.conftest import two_sweeps_at_once
from tests.factories import StoreFactory, order_in_status

pytestmark = pytest.mark.django_db

S = OrderStatus
QUEUE_DUE = timedelta(hours=2, minutes=1)


def waiting_orders(store, count: int) -> list:
    """``count`` orders asked to confirm, with the store's reminder off: at two hours only the
    "cod-queue" timers are due."""
    Rule.objects.filter(store=store, key="cod-reminder").update(enabled=False)
    return [order_in_status(S.AWAITING_CONFIRMATION, store=store) for _ in range(count)]


def queue_timer(order) -> Timer:
    return Timer.objects.get(order=order, rule__key="cod-queue")


def queued(order) -> tuple[int, int]:
    """(open queue entries, automation_queued events) of the order."""
    entries = QueueEntry.objects.filter(order=order, state=QueueEntry.State.OPEN).count()
    return entries, OrderEvent.objects.filter(order=order, type="automation_queued").count()


def test_due_queue_timers_put_every_order_in_the_queue_once_with_its_event(store, sweep_after):
    orders = waiting_orders(store, 4)

    run = sweep_after(QUEUE_DUE)

    assert (run.fired, run.skipped, run.errors) == (4, 0, 0)
    assert [queued(order) for order in orders] == [(1, 1)] * 4
    assert {queue_timer(order).outcome for order in orders} == {
        "queued: no answer to the confirmation request in 2 h"
    }


def test_the_batch_event_names_the_rule_and_its_version(store, sweep_after, default_rule):
    (order,) = waiting_orders(store, 1)

    sweep_after(QUEUE_DUE)

    event = OrderEvent.objects.get(order=order, type="automation_queued")
    rule = default_rule("cod-queue")
    assert event.source == OrderEvent.Source.AUTOMATION
    assert (event.payload["rule_id"], event.payload["rule_version"]) == (rule.pk, rule.version)


def _statements_to_sweep(store, count: int) -> int:
    waiting_orders(store, count)
    later = time_machine.travel(timezone.now() + QUEUE_DUE, tick=False)
    with later, CaptureQueriesContext(connection) as captured:
        timers_sweep()
    return len(captured)


def test_a_batch_of_twelve_takes_as_many_statements_as_a_batch_of_three():
    assert _statements_to_sweep(StoreFactory(), 3) == _statements_to_sweep(StoreFactory(), 12)


def test_a_batch_moves_up_an_open_entry_of_lower_priority_and_keeps_a_higher_one(store, sweep_after):
    low, high = waiting_orders(store, 2)
    QueueEntry.objects.create(order=low, priority=10, reason="asked to be called back")
    QueueEntry.objects.create(order=high, priority=90, reason="agent already on it")

    sweep_after(QUEUE_DUE)

    assert QueueEntry.objects.get(order=low).priority == 50
    assert QueueEntry.objects.get(order=high).reason == "agent already on it"
    assert queue_timer(high).outcome == "already queued: agent already on it"


def test_a_tag_rule_fires_in_a_batch_and_tags_each_order_once(store, sweep_after, default_rule):
    orders = waiting_orders(store, 3)
    Rule.objects.filter(pk=default_rule("cod-queue").pk).update(
        actions=[{"type": "tag", "add": "no-answer"}, {"type": "team_alert", "text": "silent customer"}]
    )

    sweep_after(QUEUE_DUE)

    for order in orders:
        order.refresh_from_db()
        assert "no-answer" in order.tags
        assert OrderEvent.objects.filter(order=order, type="automation_tagged").count() == 1
        assert OrderEvent.objects.filter(order=order, type="automation_team_alerted").count() == 1


def test_an_order_that_moved_on_after_the_claim_is_not_queued(store, default_rule):
    (order,) = waiting_orders(store, 1)
    timer = queue_timer(order)
    Timer.objects.filter(pk=timer.pk).update(state=Timer.State.FIRING, fired_at=timezone.now())
    order_transition(order, "confirm", source=OrderEvent.Source.CUSTOMER)
    rule = default_rule("cod-queue")

    fired, skipped = timers_fire([timer.pk], timezone.now(), {rule.pk: rule})

    assert (fired, skipped) == (0, 1)
    assert queued(order) == (0, 0)
    timer.refresh_from_db()
    assert (timer.state, timer.outcome) == (Timer.State.DEAD, "the order moved on")


@pytest.mark.postgres
def test_a_failing_batch_is_fired_one_by_one_and_only_the_bad_order_fails(store, sweep_after):
    good, bad = waiting_orders(store, 2)
    # A real database error for one order's queue entry (a trigger), so the batch's INSERT fails.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION refuse_order_{bad.pk}() RETURNS trigger AS $$
            BEGIN
                IF NEW.order_id = {bad.pk} THEN RAISE EXCEPTION 'refused for this test'; END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_one_order BEFORE INSERT ON automations_queueentry
                FOR EACH ROW EXECUTE FUNCTION refuse_order_{bad.pk}();"""
        )

    run = sweep_after(QUEUE_DUE)

    assert (run.fired, run.errors) == (1, 1)
    assert queued(good) == (1, 1)
    assert queued(bad) == (0, 0)
    assert queue_timer(bad).state == Timer.State.FAILED
    assert "refused for this test" in run.error_text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_the_same_time_queue_each_order_exactly_once():
    orders = waiting_orders(StoreFactory(), 12)

    runs = two_sweeps_at_once(QUEUE_DUE, batch_size=3)

    assert sum(run.fired for run in runs) == 12
    assert [queued(order) for order in orders] == [(1, 1)] * 12
