"""A store delivery whose processing fails is tried again by itself, with backoff, then left for a person.

The failure is a real one: a receiver of ``status_entered`` (where the store's rules run, inside the
delivery's transaction) that raises, as a broken rule or a lost database connection would.
"""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from messaging.models import Message
from orders.models import Order, StoreDelivery
from orders.services.inbox import store_delivery_receive, store_delivery_retry, store_delivery_sweep
from orders.services.ingest import MAX_ATTEMPTS, store_delivery_process, store_delivery_retry_delay
from orders.signals import status_entered
from tests.factories import StoreFactory, UserFactory
from tests.orders.test_store_webhooks import SHOPIFY_SECRET, fixture

pytestmark = pytest.mark.django_db

D = StoreDelivery.Status


class FailingRules:
    """Raises from ``status_entered`` the first ``times`` times it is sent (None: every time)."""

    def __init__(self, times: int | None):
        self.times = times
        self.raised = 0

    def __call__(self, **kwargs):
        if self.times is None or self.raised < self.times:
            self.raised += 1
            raise RuntimeError("the rules engine is down")


@pytest.fixture
def failing_rules():
    connected = []

    def connect(times: int | None = 1) -> FailingRules:
        receiver = FailingRules(times)
        status_entered.connect(receiver, weak=False, dispatch_uid=f"failing-rules-{id(receiver)}")
        connected.append(receiver)
        return receiver

    yield connect
    for receiver in connected:
        status_entered.disconnect(dispatch_uid=f"failing-rules-{id(receiver)}")


@pytest.fixture
def store():
    return StoreFactory(platform_secret=SHOPIFY_SECRET)


def received(store, body: bytes | None = None) -> StoreDelivery:
    delivery_id, _ = store_delivery_receive(
        store,
        "shopify",
        topic="orders/create",
        idempotency_key="event-1",
        headers={},
        body=body if body is not None else fixture("shopify/orders_create.json"),
    )
    return StoreDelivery.objects.get(pk=delivery_id)


def sweep_at(moment, capture) -> int:
    """The minute's sweep at ``moment``; the drain it wakes runs inline."""
    with time_machine.travel(moment, tick=False), capture(execute=True):
        return store_delivery_sweep()


# --- the schedule ----------------------------------------------------------------------------
@pytest.mark.parametrize(("attempts", "minutes"), [(1, 1), (2, 4), (3, 16), (4, 60), (9, 60)])
def test_the_wait_before_a_retry_grows_from_a_minute_to_an_hour_with_jitter(attempts, minutes):
    delays = {store_delivery_retry_delay(attempts) for _ in range(50)}

    assert all(timedelta(minutes=minutes) / 2 <= delay <= timedelta(minutes=minutes) for delay in delays)
    assert len(delays) > 1  # jittered: deliveries failed together do not come back together


# --- failing, retrying, failing for good -----------------------------------------------------
def test_a_delivery_whose_processing_fails_waits_for_its_retry_with_the_error_kept(store, failing_rules):
    failing_rules(times=1)
    delivery = received(store)
    before = timezone.now()

    store_delivery_process(delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (D.RETRYING, 1)
    assert before + timedelta(seconds=30) <= delivery.next_attempt_at <= timezone.now() + timedelta(minutes=1)
    assert delivery.error == "RuntimeError: the rules engine is down"
    assert "RuntimeError" in delivery.error_trace
    assert not Order.objects.filter(store=store).exists()  # what it did was rolled back


def test_a_retrying_delivery_is_left_alone_until_its_time(
    store, failing_rules, django_capture_on_commit_callbacks
):
    failing_rules(times=1)
    delivery = received(store)
    store_delivery_process(delivery.pk)
    delivery.refresh_from_db()

    woken = sweep_at(delivery.next_attempt_at - timedelta(seconds=1), django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert (woken, delivery.status, delivery.attempts) == (0, D.RETRYING, 1)


def test_a_delivery_failing_once_then_succeeding_is_processed_exactly_once(
    store, failing_rules, django_capture_on_commit_callbacks
):
    # given a delivery whose first attempt failed
    failing_rules(times=1)
    delivery = received(store)
    store_delivery_process(delivery.pk)
    delivery.refresh_from_db()

    # when the sweep runs once its retry time has come
    woken = sweep_at(delivery.next_attempt_at, django_capture_on_commit_callbacks)

    # then the drain it woke processed it: one order, one placed event, one confirmation request
    delivery.refresh_from_db()
    order = Order.objects.get(store=store)
    assert woken == 1
    assert (delivery.status, delivery.attempts, delivery.order) == (D.PROCESSED, 2, order)
    assert (delivery.next_attempt_at, delivery.error, delivery.error_trace) == (None, "", "")
    assert order.status == "awaiting_confirmation"
    assert order.events.filter(type="placed").count() == 1
    assert Message.objects.filter(order=order, event="confirmation_requested").count() == 1


def test_a_delivery_that_keeps_failing_is_failed_for_a_person_after_the_last_attempt(
    store, failing_rules, django_capture_on_commit_callbacks
):
    failing_rules(times=None)
    delivery = received(store)
    store_delivery_process(delivery.pk)
    delivery.refresh_from_db()

    while delivery.status == D.RETRYING:
        sweep_at(delivery.next_attempt_at, django_capture_on_commit_callbacks)
        delivery.refresh_from_db()

    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (D.FAILED, MAX_ATTEMPTS, None)
    assert sweep_at(timezone.now() + timedelta(days=1), django_capture_on_commit_callbacks) == 0


def test_the_retries_of_a_delivery_that_keeps_failing_span_about_an_hour_and_a_half_at_most(
    store, failing_rules, django_capture_on_commit_callbacks
):
    failing_rules(times=None)
    delivery = received(store)
    store_delivery_process(delivery.pk)
    delivery.refresh_from_db()
    first_failure = delivery.processed_at

    while delivery.status == D.RETRYING:
        sweep_at(delivery.next_attempt_at, django_capture_on_commit_callbacks)
        delivery.refresh_from_db()

    assert timedelta(minutes=40) <= delivery.processed_at - first_failure <= timedelta(minutes=81)


def test_a_flagged_delivery_is_not_retried_by_itself(store, django_capture_on_commit_callbacks):
    delivery = received(store, body=b"<html>not json</html>")
    store_delivery_process(delivery.pk)

    woken = sweep_at(timezone.now() + timedelta(hours=2), django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert (woken, delivery.status, delivery.attempts, delivery.next_attempt_at) == (0, D.FLAGGED, 1, None)


# --- a person's retry ------------------------------------------------------------------------
def test_a_person_can_retry_a_retrying_delivery_at_once(
    store, failing_rules, django_capture_on_commit_callbacks
):
    failing_rules(times=1)
    delivery = received(store)
    store_delivery_process(delivery.pk)

    with django_capture_on_commit_callbacks(execute=True):
        retried = store_delivery_retry(delivery, actor=UserFactory())

    delivery.refresh_from_db()
    assert retried
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (D.PROCESSED, 2, None)


def test_a_failed_delivery_a_person_retries_that_fails_again_is_failed_again(
    store, failing_rules, django_capture_on_commit_callbacks
):
    failing_rules(times=None)
    delivery = received(store)
    StoreDelivery.objects.filter(pk=delivery.pk).update(status=D.FAILED, attempts=MAX_ATTEMPTS)

    with django_capture_on_commit_callbacks(execute=True):
        store_delivery_retry(delivery, actor=UserFactory())

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        D.FAILED,
        MAX_ATTEMPTS + 1,
        None,
    )
