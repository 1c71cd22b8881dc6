"""The outbox drain: due messages sent in batches through the real twilio SDK to the loopback fake.

The provider and outbox tests send one message at a time (``message_send``, the same path with a
batch of one); these tests show what batching adds: one drain sends a whole backlog with a fixed
number of queries, a failure in a batch is handled on its own, two drains side by side never send
a message twice, and commits coalesce their wake-ups into one pending drain task.
"""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import messaging.providers.sandbox
import messaging.providers.twilio  # noqa: F401 - registered whichever provider test ran first
from messaging.models import Consent, Message, MessageAttempt, MessagingSettings
from messaging.services.consent import consent_record
from messaging.services.dispatch import outbox_drain
from messaging.services.wakeup import outbox_wake, outbox_wake_clear
from orders.models import OrderEvent
from orders.services import order_transition
from tests.factories import OrderFactory, StoreFactory, channel_provider_set
from tests.fakes.twilio import FakeTwilio

PREFIX = "LIVRA_DISPATCH_TWILIO"
SENDER = "+15005550006"


@pytest.fixture
def twilio(monkeypatch):
    with FakeTwilio() as fake:
        for name, value in fake.env(PREFIX).items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def sms_store():
    """A store that texts through Twilio, with no quiet hours."""
    store = StoreFactory()
    MessagingSettings.objects.create(
        store=store, channel_order=["sms"], quiet_hours_start=None, quiet_hours_end=None
    )
    channel_provider_set(
        store=store, channel="sms", provider="twilio", sender=SENDER, credentials_env_prefix=PREFIX
    )
    return store


def queue_confirmation_requests(store, count: int) -> list[Message]:
    """``count`` orders moved to awaiting_confirmation; their messages wait in the outbox (the
    drain is called by the test, not by a commit)."""
    orders = [OrderFactory(store=store) for _ in range(count)]
    with transaction.atomic():
        for order in orders:
            order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)
    return list(Message.objects.filter(order__in=orders).order_by("pk"))


def statuses(messages: list[Message]) -> list[str]:
    return [Message.objects.get(pk=message.pk).status for message in messages]


@pytest.mark.django_db
def test_one_drain_sends_a_backlog_with_as_many_queries_for_twelve_messages_as_for_three(
    twilio, sms_store, settings
):
    settings.LIVRA_OUTBOX_SEND_THREADS = 12  # a thread for every call: they all start at once
    small, large = queue_confirmation_requests(sms_store, 3), None

    with CaptureQueriesContext(connection) as for_three:
        outbox_drain()
    large = queue_confirmation_requests(sms_store, 12)
    with CaptureQueriesContext(connection) as for_twelve:
        outbox_drain()

    assert statuses(small + large) == ["sent"] * 15
    assert len(twilio.create_calls) == 15
    assert len(for_twelve.captured_queries) == len(for_three.captured_queries)


@pytest.mark.django_db
def test_each_message_of_a_batch_gets_its_own_attempt_and_history(twilio, sms_store):
    messages = queue_confirmation_requests(sms_store, 4)

    result = outbox_drain()

    assert (result.claimed, result.accepted, result.failed) == (4, 4, 0)
    for message in messages:
        message.refresh_from_db()
        (attempt,) = MessageAttempt.objects.filter(message=message)
        assert (attempt.outcome, attempt.provider_message_id) == ("accepted", message.provider_message_id)
        assert message.provider_message_id.startswith("SM")
        assert [(c.from_status, c.to_status) for c in message.status_changes.all()] == [
            ("", "queued"),
            ("queued", "sending"),
            ("sending", "sent"),
        ]


@pytest.mark.django_db
def test_a_throttled_message_in_a_batch_is_retried_later_while_the_others_are_sent(twilio, sms_store):
    first, throttled, last = queue_confirmation_requests(sms_store, 3)
    twilio.fail_for(throttled.customer.phone, 20429, 429)

    result = outbox_drain()

    assert (result.accepted, result.failed) == (2, 1)
    assert statuses([first, throttled, last]) == ["sent", "queued", "sent"]
    throttled.refresh_from_db()
    assert throttled.error_code == "20429"
    assert throttled.next_attempt_at > throttled.created_at


@pytest.mark.django_db
def test_a_message_whose_customer_opted_out_while_it_waited_is_finished_without_a_call(twilio, sms_store):
    kept, stopped = queue_confirmation_requests(sms_store, 2)
    consent_record(stopped.customer, "sms", Consent.Status.OPTED_OUT, source=Consent.Source.CUSTOMER_REPLY)

    result = outbox_drain()

    assert (result.claimed, result.accepted, result.refused) == (2, 1, 1)
    assert statuses([kept, stopped]) == ["sent", "undeliverable"]
    assert [call.form()["To"] for call in twilio.create_calls] == [[kept.customer.phone]]


@pytest.mark.django_db
def test_a_drain_leaves_messages_that_are_not_due_yet(twilio, sms_store):
    (later,) = queue_confirmation_requests(sms_store, 1)
    Message.objects.filter(pk=later.pk).update(next_attempt_at=later.created_at + timedelta(hours=1))

    result = outbox_drain()

    assert result.claimed == 0
    assert statuses([later]) == ["queued"]


@pytest.mark.django_db
def test_a_full_batch_wakes_another_drain_for_the_rest(twilio, sms_store):
    messages = queue_confirmation_requests(sms_store, 5)

    outbox_drain(batch_size=2)  # the drain it wakes runs inline here (eager tasks)

    assert statuses(messages) == ["sent"] * 5
    assert len(twilio.create_calls) == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_drains_running_side_by_side_on_threads_send_each_message_once(twilio, sms_store, settings):
    settings.LIVRA_OUTBOX_SEND_THREADS = 4
    messages = queue_confirmation_requests(sms_store, 60)
    start = threading.Barrier(3)

    def drain_until_empty():
        try:
            start.wait()
            while outbox_drain(batch_size=10).claimed:
                pass
        finally:
            connection.close()

    drains = [threading.Thread(target=drain_until_empty) for _ in range(3)]
    for drain in drains:
        drain.start()
    for drain in drains:
        drain.join(60)

    assert statuses(messages) == ["sent"] * 60
    assert sorted(call.form()["To"][0] for call in twilio.create_calls) == sorted(
        message.customer.phone for message in messages
    )
    assert MessageAttempt.objects.filter(message__in=messages).count() == 60


# --- what a worker killed mid-batch would leave: each call's start and answer on its row ---------
class TwilioThatReadsTheAttempts(FakeTwilio):
    """Twilio, noting for each request what Livra's attempt rows said when it arrived (our message
    id rides in the StatusCallback URL)."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[int, dict[int, tuple]]] = []

    def handle(self, request):
        message_id = int(request.form()["StatusCallback"][0].rsplit("message_id=", 1)[1])
        try:
            rows = {
                row[0]: row[1:]
                for row in MessageAttempt.objects.filter(
                    message__order__store__slug=self.store_slug
                ).values_list("message_id", "started_at", "outcome", "provider_message_id")
            }
        finally:
            connection.close()  # this server thread's own connection
        self.seen.append((message_id, rows))
        return super().handle(request)


@pytest.fixture
def attempt_reading_twilio(monkeypatch, sms_store):
    with TwilioThatReadsTheAttempts() as fake:
        fake.store_slug = sms_store.slug
        for name, value in fake.env(PREFIX).items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("threads", [1, 3])
def test_no_request_reaches_the_provider_before_its_attempt_row_says_it_started(
    attempt_reading_twilio, sms_store, settings, threads
):
    settings.LIVRA_OUTBOX_SEND_THREADS = threads

    messages = queue_confirmation_requests(sms_store, 7)  # the commit's drain runs inline

    assert statuses(messages) == ["sent"] * 7
    assert sorted(message_id for message_id, _ in attempt_reading_twilio.seen) == [m.pk for m in messages]
    for message_id, rows in attempt_reading_twilio.seen:
        started_at, outcome, _ = rows[message_id]
        assert started_at is not None and outcome == "pending"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_each_answer_is_on_its_attempt_row_before_the_next_call_starts(
    attempt_reading_twilio, sms_store, settings
):
    # given one send thread: each call starts after the previous one's answer came in
    settings.LIVRA_OUTBOX_SEND_THREADS = 1

    queue_confirmation_requests(sms_store, 4)  # the commit's drain runs inline

    # then at each request the provider's earlier answers were on record, ids included, so a
    # worker killed then would leave them sent, not unknown
    sids = {message_id: sid for message_id, (_, _, sid) in attempt_reading_twilio.seen[-1][1].items() if sid}
    assert len(sids) == 3
    for earlier, (_, rows) in enumerate(attempt_reading_twilio.seen):
        answered = {message_id: row[2] for message_id, row in rows.items() if row[1] == "accepted"}
        assert len(answered) == earlier
        assert all(sid.startswith("SM") for sid in answered.values())


@pytest.mark.django_db
def test_calls_that_start_together_are_marked_started_in_one_statement(twilio, sms_store, settings):
    settings.LIVRA_OUTBOX_SEND_THREADS = 4
    queue_confirmation_requests(sms_store, 4)

    with CaptureQueriesContext(connection) as queries:
        outbox_drain()

    marks = [q["sql"] for q in queries.captured_queries if "SET started_at" in q["sql"]]
    assert len(marks) == 1
    assert MessageAttempt.objects.filter(started_at__isnull=True).count() == 0


# --- waking the drain --------------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_many_commits_publish_one_drain_task_while_it_is_pending(celery_idle_queue):
    store = StoreFactory()

    for _ in range(5):
        order_transition(OrderFactory(store=store), "request_confirmation", source=OrderEvent.Source.SYSTEM)

    assert Message.objects.filter(order__store=store, status="queued").count() == 5
    assert celery_idle_queue.depth() == 1


@pytest.mark.postgres
@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_commit_after_the_drain_started_publishes_the_next_drain(celery_idle_queue):
    store = StoreFactory()
    order_transition(OrderFactory(store=store), "request_confirmation", source=OrderEvent.Source.SYSTEM)

    outbox_wake_clear()  # what a drain does first
    order_transition(OrderFactory(store=store), "request_confirmation", source=OrderEvent.Source.SYSTEM)

    assert celery_idle_queue.depth() == 2


@pytest.mark.postgres
@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_pending_drain_that_never_started_stops_holding_the_others_back(celery_idle_queue):
    assert outbox_wake() is True
    assert outbox_wake() is False

    with time_machine.travel(timedelta(seconds=11)):
        assert outbox_wake() is True

    assert celery_idle_queue.depth() == 2
