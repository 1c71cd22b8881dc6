"""The outbox sweep: fallback on silence for urgent events, lost kicks, expired leases (a worker
killed mid-send), and a query count that does not grow with the rows it leaves alone."""

import datetime
from zoneinfo import ZoneInfo

import pytest

from messaging.models import Channel, Message, MessageAttempt, MessagingSettings, Notification
from messaging.providers import ErrorKind, ProviderError, StatusUpdate
from messaging.services.dispatch import outbox_drain
from messaging.services.outbox import LOST_KICK_GRACE, SENDING_LEASE, notification_create
from messaging.services.receipts import message_apply_status
from messaging.services.sweep import outbox_sweep
from messaging.tasks import message_send_task
from tests.factories import OrderFactory
from tests.fakes.scripted_provider import SCRIPTED, accepted, use_scripted_provider

pytestmark = pytest.mark.django_db

WHATSAPP, SMS, EMAIL = Channel.WHATSAPP, Channel.SMS, Channel.EMAIL
NOON = datetime.datetime(2025, 6, 10, 12, 0, tzinfo=ZoneInfo("Africa/Casablanca"))
URGENT, NOT_URGENT = "out_for_delivery", "order_confirmed"
WHATSAPP_TIMEOUT = datetime.timedelta(seconds=600)  # the default receipt timeout on WhatsApp


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOON, tick=False)
    return time_machine


def sweep_at(clock, committed, moment: datetime.datetime):
    clock.move_to(moment, tick=False)
    with committed():
        return outbox_sweep()


def channels_called(scripted) -> list[str]:
    return [call.channel for call in scripted.calls]


def refreshed(message: Message) -> Message:
    message.refresh_from_db()
    return message


def delivered_receipt(message: Message) -> None:
    message_apply_status("scripted", StatusUpdate(refreshed(message).provider_message_id, "delivered"))


# --- fallback on silence (urgent events) -----------------------------------------------------
def test_an_urgent_message_without_a_receipt_in_time_falls_back_to_the_next_channel(
    order, scripted, clock, committed
):
    with committed():
        notification = notification_create(order, event=URGENT, key="k")

    result = sweep_at(clock, committed, NOON + WHATSAPP_TIMEOUT + datetime.timedelta(seconds=1))

    whatsapp, sms = notification.messages.get(channel=WHATSAPP), notification.messages.get(channel=SMS)
    assert result.fell_back == 1
    assert (sms.status, sms.fallback_from) == (Message.Status.SENT, whatsapp)
    assert sms.fallback_reason == "no delivery receipt on whatsapp within 600 s"
    assert whatsapp.status == Message.Status.SENT  # it may still arrive; it just did not in time
    assert channels_called(scripted) == [WHATSAPP, SMS]


def test_the_sweep_waits_out_the_receipt_timeout_before_falling_back(order, scripted, clock, committed):
    with committed():
        notification_create(order, event=URGENT, key="k")

    result = sweep_at(clock, committed, NOON + WHATSAPP_TIMEOUT - datetime.timedelta(seconds=1))

    assert result.fell_back == 0
    assert channels_called(scripted) == [WHATSAPP]


def test_the_store_receipt_timeout_per_channel_is_used(order, scripted, clock, committed):
    MessagingSettings.objects.create(store=order.store, receipt_timeouts={WHATSAPP: 120})
    with committed():
        notification_create(order, event=URGENT, key="k")

    sweep_at(clock, committed, NOON + datetime.timedelta(seconds=121))

    assert channels_called(scripted) == [WHATSAPP, SMS]


def test_a_non_urgent_message_does_not_fall_back_on_silence(order, scripted, clock, committed):
    with committed():
        notification_create(order, event=NOT_URGENT, key="k")

    sweep_at(clock, committed, NOON + datetime.timedelta(days=2))

    assert channels_called(scripted) == [WHATSAPP]


def test_a_delivered_receipt_before_the_timeout_stops_the_fallback(order, scripted, clock, committed):
    with committed():
        notification = notification_create(order, event=URGENT, key="k")
    clock.move_to(NOON + datetime.timedelta(seconds=30), tick=False)
    delivered_receipt(notification.messages.get())

    sweep_at(clock, committed, NOON + datetime.timedelta(hours=1))

    notification.refresh_from_db()
    assert notification.status == Notification.Status.DELIVERED
    assert channels_called(scripted) == [WHATSAPP]


def test_each_silent_channel_in_turn_falls_back_until_none_is_left(order, scripted, clock, committed):
    with committed():
        notification = notification_create(order, event=URGENT, key="k")

    for minutes in (11, 27, 58):  # whatsapp 10 min, then sms 15 min, then e-mail 30 min
        sweep_at(clock, committed, NOON + datetime.timedelta(minutes=minutes))

    notification.refresh_from_db()
    assert channels_called(scripted) == [WHATSAPP, SMS, EMAIL]
    assert notification.status == Notification.Status.EXHAUSTED


def test_a_late_receipt_on_an_earlier_channel_stops_a_retry_on_the_next_one(
    order, scripted, clock, committed
):
    # given WhatsApp stayed silent and the SMS fallback is waiting to retry
    scripted.script(ProviderError(ErrorKind.RETRYABLE, "20429"), channel=SMS)
    with committed():
        notification = notification_create(order, event=URGENT, key="k")
    sweep_at(clock, committed, NOON + WHATSAPP_TIMEOUT + datetime.timedelta(seconds=1))
    sms = notification.messages.get(channel=SMS)
    assert refreshed(sms).status == Message.Status.QUEUED

    # when WhatsApp's delivered receipt finally arrives, before the SMS retry is due
    delivered_receipt(notification.messages.get(channel=WHATSAPP))
    sweep_at(clock, committed, sms.next_attempt_at + LOST_KICK_GRACE)

    # then the SMS is not sent again: stop at the first delivered
    assert (refreshed(sms).status, sms.error_code) == (Message.Status.FAILED, "superseded")
    assert channels_called(scripted) == [WHATSAPP, SMS]


def test_a_late_failure_on_a_channel_already_handed_over_does_not_skip_the_next_one(
    order, scripted, clock, committed
):
    # given WhatsApp stayed silent and the SMS fallback went out and waits for its receipt
    with committed():
        notification = notification_create(order, event=URGENT, key="k")
    sweep_at(clock, committed, NOON + WHATSAPP_TIMEOUT + datetime.timedelta(seconds=1))
    whatsapp = notification.messages.get(channel=WHATSAPP)

    # when WhatsApp finally reports a failure
    with committed():
        message_apply_status(
            "scripted", StatusUpdate(whatsapp.provider_message_id, "failed", error_code="131026")
        )

    # then it is recorded, and e-mail is not tried while the SMS may still arrive
    assert refreshed(whatsapp).status == Message.Status.FAILED
    assert channels_called(scripted) == [WHATSAPP, SMS]
    assert not notification.messages.filter(channel=EMAIL).exists()


# --- lost kicks -----------------------------------------------------------------------------
def test_a_queued_message_whose_kick_was_lost_is_sent_after_the_grace_period(
    order, scripted, clock, committed, django_capture_on_commit_callbacks
):
    # given the kick never reached the broker (the callback is dropped, not run)
    with django_capture_on_commit_callbacks(execute=False):
        message = notification_create(order, event=NOT_URGENT, key="k").messages.get()

    result = sweep_at(clock, committed, NOON + LOST_KICK_GRACE + datetime.timedelta(seconds=1))

    assert result.kicked == 1
    assert refreshed(message).status == Message.Status.SENT
    assert channels_called(scripted) == [WHATSAPP]


def test_a_fresh_queued_message_is_left_to_its_own_kick(
    order, scripted, clock, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        message = notification_create(order, event=NOT_URGENT, key="k").messages.get()
    clock.move_to(NOON + LOST_KICK_GRACE - datetime.timedelta(seconds=1), tick=False)

    with django_capture_on_commit_callbacks(execute=True) as kicks:
        result = outbox_sweep()

    assert (result.kicked, kicks) == (0, [])
    assert refreshed(message).status == Message.Status.QUEUED
    assert scripted.calls == []


# --- a worker killed mid-send (rows as it leaves them) --------------------------------------
class WorkerKilled(BaseException):
    """The process died during the provider call: nothing after the call ran."""


def kill_the_worker(outbound):
    raise WorkerKilled


@pytest.fixture
def killed_mid_send(order, scripted, committed) -> Message:
    """A message whose worker died during the provider call: sending, leased, attempt pending."""
    scripted.script(kill_the_worker)
    with pytest.raises(WorkerKilled), committed():
        notification_create(order, event=URGENT, key="k")
    message = Message.objects.get(order=order)
    assert (message.status, message.lease_expires_at) == (Message.Status.SENDING, NOON + SENDING_LEASE)
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.PENDING
    return message


def test_a_lease_still_running_is_left_alone(killed_mid_send, scripted, clock, committed):
    sweep_at(clock, committed, NOON + SENDING_LEASE - datetime.timedelta(seconds=1))

    assert refreshed(killed_mid_send).status == Message.Status.SENDING
    assert len(scripted.calls) == 1


def test_an_expired_lease_with_no_answer_recorded_is_marked_unknown_and_not_resent(
    killed_mid_send, scripted, clock, committed
):
    result = sweep_at(clock, committed, NOON + SENDING_LEASE + datetime.timedelta(seconds=1))
    sweep_at(clock, committed, NOON + datetime.timedelta(seconds=300))

    message = refreshed(killed_mid_send)
    assert result.marked_unknown == 1
    assert message.status == Message.Status.UNKNOWN
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.UNKNOWN
    assert len(scripted.calls) == 1


def test_an_urgent_message_lost_with_its_worker_falls_back_after_the_receipt_timeout(
    killed_mid_send, scripted, clock, committed
):
    sweep_at(clock, committed, NOON + SENDING_LEASE + datetime.timedelta(seconds=1))
    sweep_at(clock, committed, NOON + WHATSAPP_TIMEOUT + datetime.timedelta(seconds=1))

    assert channels_called(scripted) == [WHATSAPP, SMS]


def test_a_redelivered_send_task_does_not_call_the_provider_for_a_claimed_message(killed_mid_send, scripted):
    # acks_late + reject_on_worker_lost: the broker hands the dead worker's task to another one.
    message_send_task.delay(killed_mid_send.pk)

    assert refreshed(killed_mid_send).status == Message.Status.SENDING
    assert len(scripted.calls) == 1


def test_an_answer_that_comes_after_the_sweep_gave_up_still_records_the_send(
    order, scripted, clock, committed
):
    # given a provider call that outlives its lease, while the sweep marks the message unknown
    def slow_accept(outbound):
        sweep_at(clock, committed, NOON + SENDING_LEASE + datetime.timedelta(seconds=1))
        assert Message.objects.get(pk=outbound.message_id).status == Message.Status.UNKNOWN
        return accepted("SM-late")

    scripted.script(slow_accept)

    # when the answer finally comes
    with committed():
        message = notification_create(order, event=NOT_URGENT, key="k").messages.get()

    # then the message is sent, with the provider's id, so its receipts can find it
    message = refreshed(message)
    assert (message.status, message.provider_message_id) == (Message.Status.SENT, "SM-late")
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.ACCEPTED


def test_a_retryable_answer_after_the_sweep_moved_on_is_not_retried(order, scripted, clock, committed):
    # given an urgent call so slow that the sweep gave up and fell back to SMS meanwhile
    def slow_failure(outbound):
        sweep_at(clock, committed, NOON + SENDING_LEASE + datetime.timedelta(seconds=1))
        sweep_at(clock, committed, NOON + WHATSAPP_TIMEOUT + datetime.timedelta(seconds=1))
        raise ProviderError(ErrorKind.RETRYABLE, "20429")

    scripted.script(slow_failure, channel=WHATSAPP)

    with committed():
        notification = notification_create(order, event=URGENT, key="k")

    whatsapp = notification.messages.get(channel=WHATSAPP)
    assert (whatsapp.status, whatsapp.error_code) == (Message.Status.FAILED, "20429")
    assert channels_called(scripted) == [WHATSAPP, SMS]  # and not e-mail: SMS is still waiting


# --- a worker killed mid-batch: one call at a time, so each moment can be reached ------------
AFTER_THE_LEASE = NOON + SENDING_LEASE + datetime.timedelta(seconds=1)


def queue_two(order, django_capture_on_commit_callbacks) -> tuple[Message, Message]:
    """Two queued messages of ``order``'s store whose kick is not run."""
    with django_capture_on_commit_callbacks(execute=False):
        first = notification_create(order, event=NOT_URGENT, key="first")
        second = notification_create(OrderFactory(store=order.store), event=NOT_URGENT, key="second")
    return first.messages.get(), second.messages.get()


@pytest.fixture
def batch_of_two(order, settings, django_capture_on_commit_callbacks) -> tuple[Message, Message]:
    """Two queued messages that one drain claims together and sends one call after the other."""
    settings.LIVRA_OUTBOX_SEND_THREADS = 1
    return queue_two(order, django_capture_on_commit_callbacks)


def drain_killed(scripted, *answers) -> None:
    """A drain whose worker dies at the call answered with ``kill_the_worker``."""
    scripted.script(*answers)
    with pytest.raises(WorkerKilled):
        outbox_drain()


def message_ids_called(scripted) -> list[int]:
    return [call.outbound.message_id for call in scripted.calls]


def test_a_message_claimed_but_never_called_is_queued_again_and_sent_once_its_lease_expired(
    batch_of_two, scripted, clock, committed
):
    first, second = batch_of_two
    drain_killed(scripted, kill_the_worker)
    assert MessageAttempt.objects.get(message=second).started_at is None

    result = sweep_at(clock, committed, AFTER_THE_LEASE)

    assert (result.requeued, result.marked_unknown) == (1, 1)
    assert (refreshed(first).status, refreshed(second).status) == (
        Message.Status.UNKNOWN,
        Message.Status.SENT,
    )
    assert message_ids_called(scripted) == [first.pk, second.pk]


def test_a_call_never_made_uses_up_no_attempt_and_the_history_says_why_it_went_again(
    batch_of_two, scripted, clock, committed
):
    _, second = batch_of_two
    drain_killed(scripted, kill_the_worker)

    sweep_at(clock, committed, AFTER_THE_LEASE)

    second = refreshed(second)
    assert second.attempts == 1
    assert list(second.attempt_rows.values_list("number", "outcome")) == [(1, "accepted")]
    assert [(c.from_status, c.to_status, c.source, c.detail) for c in second.status_changes.all()] == [
        ("", "queued", "outbox", "queued"),
        ("queued", "sending", "send task", "attempt 1"),
        ("sending", "queued", "sweep", "lease expired before the provider was called; queued again"),
        ("queued", "sending", "send task", "attempt 1"),
        ("sending", "sent", "send task", "accepted by the provider"),
    ]


def test_a_message_claimed_but_never_called_waits_for_its_lease_to_expire(
    batch_of_two, scripted, clock, committed
):
    first, second = batch_of_two
    drain_killed(scripted, kill_the_worker)

    result = sweep_at(clock, committed, NOON + SENDING_LEASE - datetime.timedelta(seconds=1))

    assert result.requeued == 0
    assert refreshed(second).status == Message.Status.SENDING  # its worker may only be slow
    assert message_ids_called(scripted) == [first.pk]


def test_a_message_queued_again_at_night_waits_for_the_morning(
    order, scripted, clock, committed, settings, django_capture_on_commit_callbacks
):
    # given a batch claimed just before the quiet hours (21:00), whose worker dies at its first call
    clock.move_to(NOON.replace(hour=20, minute=59), tick=False)
    settings.LIVRA_OUTBOX_SEND_THREADS = 1
    first, second = queue_two(order, django_capture_on_commit_callbacks)
    drain_killed(scripted, kill_the_worker)

    # when the sweep finds the lease expired, in the quiet hours
    sweep_at(clock, committed, NOON.replace(hour=21, minute=1, second=1))

    # then the message never called is held until they end, as a new one would be
    second = refreshed(second)
    assert (second.status, second.next_attempt_at) == (
        Message.Status.QUEUED,
        NOON.replace(day=11, hour=9, minute=0),
    )
    assert message_ids_called(scripted) == [first.pk]


def test_an_acceptance_answered_before_the_worker_died_is_recorded_as_sent(
    batch_of_two, scripted, clock, committed
):
    # given the first call was accepted, and its answer written when the second call started
    first, _ = batch_of_two
    drain_killed(scripted, accepted("SM-first"), kill_the_worker)

    result = sweep_at(clock, committed, AFTER_THE_LEASE)

    first = refreshed(first)
    assert result.recovered_sent == 1
    assert (first.status, first.provider_message_id, first.sent_at) == (Message.Status.SENT, "SM-first", NOON)
    assert first.attempt_rows.get().outcome == MessageAttempt.Outcome.ACCEPTED
    assert len(scripted.calls) == 2


def test_a_throttled_answer_before_the_worker_died_is_retried_no_sooner_than_its_retry_after(
    batch_of_two, scripted, clock, committed
):
    first, _ = batch_of_two
    throttled = ProviderError(ErrorKind.RETRYABLE, "20429", "Too Many Requests", retry_after=300)
    drain_killed(scripted, throttled, kill_the_worker)

    result = sweep_at(clock, committed, AFTER_THE_LEASE)

    first = refreshed(first)
    assert result.recovered_failed == 1
    assert (first.status, first.error_code, first.attempts) == (Message.Status.QUEUED, "20429", 1)
    assert first.next_attempt_at >= AFTER_THE_LEASE + datetime.timedelta(seconds=300)
    assert first.attempt_rows.get().retry_after_seconds == 300
    assert len(scripted.calls) == 2


def test_a_call_still_waiting_when_its_lease_ends_is_not_made_once_the_sweep_sent_it_again(
    batch_of_two, scripted, clock, committed
):
    # given a first call that outlives the lease, while the second waits for the one thread
    first, second = batch_of_two

    def outlives_the_lease(outbound):
        sweep_at(clock, committed, AFTER_THE_LEASE)  # the second is queued again, and sent
        return accepted("SM-slow")

    scripted.script(outlives_the_lease)

    # when the first call returns
    result = outbox_drain()

    # then the drain does not make the second call: it went once, from the sweep's drain
    assert result.taken_back == 1
    assert message_ids_called(scripted) == [first.pk, second.pk]
    assert (refreshed(second).status, second.attempt_rows.count()) == (Message.Status.SENT, 1)
    assert refreshed(first).status == Message.Status.SENT


# --- query count ----------------------------------------------------------------------------
def untouched_rows(count: int, clock, committed, django_capture_on_commit_callbacks) -> None:
    """Rows the sweep must look past: sent and still within their receipt timeout, delivered,
    unknown but not urgent, and fresh queued rows whose own kick is on its way."""
    for n in range(count):
        order = OrderFactory()
        use_scripted_provider(order.store)
        with committed():
            urgent = notification_create(order, event=URGENT, key=f"urgent-{n}")
            notification_create(order, event=NOT_URGENT, key=f"delivered-{n}")
        delivered_receipt(Message.objects.get(notification__idempotency_key=f"delivered-{n}"))
        SCRIPTED.script(ProviderError(ErrorKind.UNKNOWN, "no_answer"))
        with committed():
            notification_create(order, event="order_received", key=f"unknown-{n}")
        assert urgent.messages.get().status == Message.Status.SENT
    clock.move_to(NOON + datetime.timedelta(seconds=300), tick=False)
    for n in range(count):
        with django_capture_on_commit_callbacks(execute=False):
            notification_create(OrderFactory(), event=NOT_URGENT, key=f"fresh-{n}")


@pytest.mark.parametrize("rows", [1, 10])
def test_the_sweep_query_count_does_not_grow_with_the_rows_it_leaves_alone(
    rows, scripted, clock, committed, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    untouched_rows(rows, clock, committed, django_capture_on_commit_callbacks)
    clock.move_to(NOON + datetime.timedelta(seconds=301), tick=False)

    with django_assert_max_num_queries(6), committed() as kicks:
        result = outbox_sweep()

    assert (result.kicked, result.recovered_sent, result.marked_unknown, result.fell_back) == (0, 0, 0, 0)
    assert kicks == []
