"""The timer sweep: due timers fire once, moved-on orders fire nothing, every run is on record."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import Rule, SweepRun, Timer
from automations.services.sweep import timers_sweep
from messaging.models import Notification
from orders.models import OrderEvent
from orders.services import order_transition
from orders.transitions import OrderStatus
from tests.automations.conftest import two_sweeps_at_once
from tests.factories import StoreFactory, order_in_status

pytestmark = pytest.mark.django_db

S = OrderStatus
REMINDER_DUE = timedelta(minutes=31)
BROKEN_ACTION = [{"type": "transition", "name": "nope"}]


def reminder(order) -> Timer:
    return Timer.objects.get(order=order, rule__key="cod-reminder")


def reminders_sent(order) -> int:
    reminder_rule = Rule.objects.get(store=order.store_id, key="cod-reminder")
    return OrderEvent.objects.filter(
        order=order, type="automation_notified", payload__rule_id=reminder_rule.pk
    ).count()


# --- firing -----------------------------------------------------------------------------------
def test_a_due_timer_fires_once_and_the_run_counts_it(awaiting, sweep_after):
    order = awaiting()

    run = sweep_after(REMINDER_DUE)

    assert (run.fired, run.skipped, run.errors) == (1, 0, 0)
    timer = reminder(order)
    assert (timer.state, timer.outcome) == (Timer.State.FIRED, "sent confirmation_reminder")
    assert reminders_sent(order) == 1


def test_a_second_sweep_fires_nothing_more(awaiting, sweep_after):
    order = awaiting()
    sweep_after(REMINDER_DUE)

    again = sweep_after(REMINDER_DUE + timedelta(minutes=1))

    assert (again.fired, again.skipped, again.errors) == (0, 0, 0)
    assert reminders_sent(order) == 1


def test_a_timer_not_yet_due_is_left_pending(awaiting, sweep_after):
    order = awaiting()

    run = sweep_after(timedelta(minutes=29))

    assert run.fired == 0
    assert reminder(order).state == Timer.State.PENDING
    assert reminders_sent(order) == 0


def test_the_sweep_fires_every_due_timer_across_batches(awaiting, sweep_after):
    orders = [awaiting() for _ in range(5)]

    run = sweep_after(REMINDER_DUE, batch_size=2)

    assert run.fired == 5
    assert [reminders_sent(order) for order in orders] == [1] * 5


def test_a_timer_whose_order_moved_on_fires_nothing_and_is_counted_skipped(awaiting, sweep_after):
    order = awaiting()
    order_transition(order, "confirm", source=OrderEvent.Source.SYSTEM)
    # The confirmation killed the timers; put one back as a sweep racing the confirmation saw it.
    Timer.objects.filter(pk=reminder(order).pk).update(state=Timer.State.PENDING, outcome="")
    notifications = Notification.objects.filter(order=order).count()

    run = sweep_after(REMINDER_DUE)

    assert (run.fired, run.skipped) == (0, 1)
    assert reminder(order).state == Timer.State.DEAD
    assert Notification.objects.filter(order=order).count() == notifications
    assert reminders_sent(order) == 0


def test_a_timer_of_a_rule_disabled_since_fires_nothing(awaiting, sweep_after, default_rule):
    order = awaiting()
    Rule.objects.filter(pk=default_rule("cod-reminder").pk).update(enabled=False)

    run = sweep_after(REMINDER_DUE)

    assert (run.fired, run.skipped) == (0, 1)
    assert reminders_sent(order) == 0


# --- failures ---------------------------------------------------------------------------------
def test_a_failing_action_marks_the_timer_failed_and_the_run_counts_the_error(
    awaiting, sweep_after, default_rule
):
    order = awaiting()
    # Written past validation, as a rule edited straight in the database would be.
    Rule.objects.filter(pk=default_rule("cod-reminder").pk).update(actions=BROKEN_ACTION)

    run = sweep_after(REMINDER_DUE)

    timer = reminder(order)
    assert (run.fired, run.skipped, run.errors) == (0, 0, 1)
    assert (
        run.error_text
        == f"timer {timer.pk}: UnknownTransition('There is no order transition called “nope”.')"
    )
    assert timer.state == Timer.State.FAILED
    assert timer.outcome.startswith("UnknownTransition(")


def test_one_failing_timer_does_not_stop_the_others(sweep_after):
    broken = order_in_status(S.AWAITING_CONFIRMATION)
    Rule.objects.filter(store=broken.store, key="cod-reminder").update(actions=BROKEN_ACTION)
    healthy = order_in_status(S.AWAITING_CONFIRMATION, store=StoreFactory())

    run = sweep_after(REMINDER_DUE)

    assert (run.fired, run.errors) == (1, 1)
    assert reminders_sent(healthy) == 1
    assert reminder(broken).state == Timer.State.FAILED


def test_a_failed_timer_is_not_fired_again(awaiting, sweep_after, default_rule):
    order = awaiting()
    Rule.objects.filter(pk=default_rule("cod-reminder").pk).update(actions=BROKEN_ACTION)
    sweep_after(REMINDER_DUE)

    again = sweep_after(REMINDER_DUE + timedelta(minutes=1))

    assert (again.fired, again.errors) == (0, 0)
    assert reminder(order).state == Timer.State.FAILED


# --- claims left behind by a crashed sweep ----------------------------------------------------
def test_a_timer_claimed_by_a_sweep_that_died_is_fired_after_the_lease(awaiting, sweep_after):
    order = awaiting()
    Timer.objects.filter(pk=reminder(order).pk).update(
        state=Timer.State.FIRING, fired_at=timezone.now() + timedelta(minutes=30)
    )

    run = sweep_after(timedelta(minutes=41))

    assert run.fired == 1
    assert reminders_sent(order) == 1


def test_a_timer_another_sweep_is_firing_is_left_to_it(awaiting, sweep_after):
    order = awaiting()
    Timer.objects.filter(pk=reminder(order).pk).update(
        state=Timer.State.FIRING, fired_at=timezone.now() + timedelta(minutes=30)
    )

    run = sweep_after(timedelta(minutes=39))

    assert run.fired == 0
    assert reminder(order).state == Timer.State.FIRING


# --- the run row ------------------------------------------------------------------------------
def test_every_sweep_writes_a_run_with_its_start_and_finish():
    before = timezone.now()

    run = timers_sweep()

    assert SweepRun.objects.get() == run
    assert before <= run.started_at <= run.finished_at <= timezone.now()
    assert (run.fired, run.skipped, run.errors, run.error_text) == (0, 0, 0, "")


# --- two sweeps at once (PostgreSQL: SKIP LOCKED) ---------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_the_same_time_fire_each_due_timer_exactly_once():
    store = StoreFactory()
    orders = [order_in_status(S.AWAITING_CONFIRMATION, store=store) for _ in range(12)]

    runs = two_sweeps_at_once(REMINDER_DUE, batch_size=3)

    assert sum(run.fired for run in runs) == 12
    assert sum(run.errors for run in runs) == 0
    assert [reminders_sent(order) for order in orders] == [1] * 12
    assert Timer.objects.filter(rule__key="cod-reminder", state=Timer.State.FIRED).count() == 12
    assert (
        Notification.objects.filter(
            event="confirmation_reminder", idempotency_key__contains=":timer:"
        ).count()
        == 12
    )
