"""Concurrent status changes of one order, on PostgreSQL, each caller on its own connection.

Django gives every thread its own database connection, so each thread below is a separate
PostgreSQL session: the row lock taken by ``order_transition`` really makes one wait for the
other. Where the test needs the calls to overlap, not just to run near each other, one caller
holds its transaction open and the test proves the other is blocked on that lock before
letting the first commit.
"""

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django_fsm import ConcurrentTransition

from messaging.models import Message
from orders.errors import IllegalTransition, OrderTransitionError, StaleOrderStatus
from orders.models import Order, OrderEvent
from orders.services import order_transition
from tests.factories import order_in_status

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SYSTEM = OrderEvent.Source.SYSTEM
TIMEOUT = 10.0


class Session(threading.Thread):
    """Runs ``fn`` on a thread, hence on a database connection of its own, closed at the end."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any):
        super().__init__(daemon=True)
        self._call = (fn, args, kwargs)
        self._connected = threading.Event()
        self.backend_pid: int | None = None
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        fn, args, kwargs = self._call
        try:
            with connection.cursor() as cursor:
                # A bug that deadlocks must fail the test, not hang the suite.
                cursor.execute("SET lock_timeout = '10s'")
                cursor.execute("SELECT pg_backend_pid()")
                self.backend_pid = cursor.fetchone()[0]
            self._connected.set()
            self.result = fn(*args, **kwargs)
        except BaseException as exc:
            self.error = exc
        finally:
            self._connected.set()
            connection.close()

    def begin(self) -> "Session":
        self.start()
        assert self._connected.wait(TIMEOUT), "the session never connected"
        return self

    def outcome(self) -> Any:
        """The call's return value; its exception is raised here, in the test's thread."""
        self.join(TIMEOUT)
        assert not self.is_alive(), f"the session is still running after {TIMEOUT:.0f}s"
        if self.error is not None:
            raise self.error
        return self.result


def in_session(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Session:
    return Session(fn, *args, **kwargs).begin()


def wait_or_fail(event: threading.Event, what: str) -> None:
    if not event.wait(TIMEOUT):
        raise TimeoutError(f"gave up waiting for {what}")


def assert_blocked_by(waiter: Session, holder: Session) -> None:
    """PostgreSQL itself says that ``waiter`` is waiting for a lock that ``holder`` holds."""
    deadline = time.monotonic() + TIMEOUT
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))", [holder.backend_pid, waiter.backend_pid])
            if cursor.fetchone()[0]:
                return
            assert waiter.is_alive(), "the second caller returned instead of waiting for the lock"
            assert time.monotonic() < deadline, "the second caller never waited for the first one's lock"
            time.sleep(0.02)


class Holder:
    """A caller that moves the order inside its own transaction and keeps it open until released."""

    def __init__(self, order_id: int, name: str, **kwargs: Any):
        self._moved = threading.Event()
        self._released = threading.Event()
        self.session = in_session(self._run, order_id, name, **kwargs)
        deadline = time.monotonic() + TIMEOUT
        while not self._moved.wait(0.02):
            if not self.session.is_alive():
                self.session.outcome()  # raises what stopped it
            assert time.monotonic() < deadline, f"the first caller never managed to {name}"

    def _run(self, order_id: int, name: str, **kwargs: Any) -> OrderEvent:
        with transaction.atomic():
            event = order_transition(order_id, name, source=SYSTEM, **kwargs)
            self._moved.set()
            wait_or_fail(self._released, "the test to let the first caller commit")
        return event

    def commit(self) -> OrderEvent:
        self._released.set()
        return self.session.outcome()


def race_behind_held_lock(order: Order, first: str, second: str, **kwargs: Any) -> tuple[OrderEvent, Session]:
    """Run two transitions of ``order`` so that the second waits on the first one's row lock.

    Both calls get ``kwargs``. Returns the first call's event, once it has committed, and the
    second call's session, whose outcome the test reads.
    """
    holder = Holder(order.pk, first, **kwargs)
    waiter = in_session(order_transition, order.pk, second, source=SYSTEM, **kwargs)
    assert_blocked_by(waiter, holder.session)
    return holder.commit(), waiter


def test_two_callers_confirming_at_once_make_one_confirmation_and_one_clear_refusal():
    order = order_in_status("awaiting_confirmation")
    events_before = OrderEvent.objects.exclude(type__startswith="automation_").count()

    winner, loser = race_behind_held_lock(order, "confirm", "confirm")

    with pytest.raises(IllegalTransition, match="cannot “confirm” while it is confirmed"):
        loser.outcome()
    order.refresh_from_db()
    assert order.status == "confirmed"
    assert list(OrderEvent.objects.filter(order=order, transition="confirm")) == [winner]
    assert Message.objects.filter(order=order, event="order_confirmed").count() == 1
    # No event lost, none invented: one successful call, one new event.
    assert OrderEvent.objects.exclude(type__startswith="automation_").count() == events_before + 1


@pytest.mark.parametrize(("winning", "losing", "final_status"), [
    ("confirm", "cancel", "confirmed"),
    ("cancel", "confirm", "cancelled"),
])  # fmt: skip
def test_the_slower_of_two_agents_looking_at_the_same_page_is_told_the_order_changed(
    winning, losing, final_status
):
    order = order_in_status("awaiting_confirmation")
    # Both agents loaded the page while the order awaited confirmation; the page sends that along.
    winner, loser = race_behind_held_lock(order, winning, losing, expected_status="awaiting_confirmation")

    with pytest.raises(StaleOrderStatus) as refused:
        loser.outcome()
    # Callers catching django-fsm's own error for lost races catch this one too.
    assert isinstance(refused.value, ConcurrentTransition)
    assert (refused.value.expected, refused.value.actual) == ("awaiting_confirmation", final_status)
    order.refresh_from_db()
    assert order.status == final_status
    assert winner.to_status == final_status
    assert not OrderEvent.objects.filter(order=order, transition=losing).exists()


def test_the_same_idempotency_key_from_two_callers_at_once_makes_one_event_for_both():
    order = order_in_status("awaiting_confirmation")
    events_before = OrderEvent.objects.exclude(type__startswith="automation_").count()

    # e.g. a store webhook delivered twice, to two web workers, at the same moment
    first, second = race_behind_held_lock(
        order, "confirm", "confirm", idempotency_key="shopify:webhook:2f8e1c"
    )

    assert second.outcome().pk == first.pk
    assert OrderEvent.objects.exclude(type__startswith="automation_").count() == events_before + 1
    assert Message.objects.filter(order=order, event="order_confirmed").count() == 1


def test_a_crowd_of_racing_transitions_loses_no_event():
    order = order_in_status("awaiting_confirmation")
    version_before = order.status_version
    # Several of these are legal from more than one status, so which ones succeed depends on
    # who gets the lock first; every success must still leave exactly one event, in sequence.
    moves = ["confirm", "cancel", "start_processing", "confirm", "ship", "cancel", "start_processing", "ship"]
    start_together = threading.Barrier(len(moves))

    def attempt(name: str) -> OrderEvent:
        start_together.wait(TIMEOUT)
        return order_transition(order.pk, name, source=SYSTEM)

    sessions = [in_session(attempt, name) for name in moves]
    successes, refusals = [], []
    for session in sessions:
        try:
            successes.append(session.outcome())
        except OrderTransitionError as exc:
            refusals.append(exc)

    assert successes, "somebody must win"
    assert len(successes) + len(refusals) == len(moves)
    new_events = list(
        OrderEvent.objects.filter(order=order, status_version__gt=version_before).order_by("status_version")
    )
    assert sorted(e.pk for e in new_events) == sorted(e.pk for e in successes)
    # The events chain: consecutive versions, each starting where the previous one ended.
    assert [e.status_version for e in new_events] == list(
        range(version_before + 1, version_before + 1 + len(successes))
    )
    for previous, following in itertools.pairwise(new_events):
        assert following.from_status == previous.to_status
    order.refresh_from_db()
    assert (order.status, order.status_version) == (new_events[-1].to_status, new_events[-1].status_version)


def test_an_instance_loaded_before_another_connection_moved_the_order_cannot_be_saved_over_it():
    order = order_in_status("confirmed")
    stale = Order.objects.get(pk=order.pk)
    in_session(order_transition, order.pk, "cancel", source=SYSTEM).outcome()

    # Only order_transition may call a transition method. This test does, on purpose: it is code
    # that bypasses the service (and its row lock), and ConcurrentTransitionMixin must still stop
    # it from writing over a status it never saw. start_processing is chosen because it sends no
    # message, so the mixin, not the outbox's unique key, is what refuses the save.
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        stale.start_processing()
        stale.save()

    order.refresh_from_db()
    assert order.status == "cancelled"
    assert not OrderEvent.objects.filter(order=order, transition="start_processing").exists()
