"""The outbox: fallback on errors, idempotency, quiet hours, retries, unknown outcomes, receipts
out of order and render failures. The provider is scripted at the adapter boundary."""

import datetime
import threading
import time
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from messaging.models import (
    Channel,
    Message,
    MessageAttempt,
    MessageTemplate,
    Notification,
)
from messaging.providers import ErrorKind, ProviderError, StatusUpdate
from messaging.services.dispatch import message_send
from messaging.services.outbox import (
    BACKOFF_CAP_SECONDS,
    MAX_ATTEMPTS,
    notification_create,
    retry_delay,
)
from messaging.services.receipts import message_apply_status
from messaging.services.sweep import outbox_sweep
from orders.models import OrderEvent
from orders.services import order_transition
from tests.factories import OrderFactory
from tests.fakes.scripted_provider import use_scripted_provider

pytestmark = pytest.mark.django_db

WHATSAPP, SMS, EMAIL = Channel.WHATSAPP, Channel.SMS, Channel.EMAIL
CASABLANCA = ZoneInfo("Africa/Casablanca")
NOON = datetime.datetime(2025, 6, 10, 12, 0, tzinfo=CASABLANCA)
URGENT, NOT_URGENT = "confirmation_requested", "order_confirmed"
BACKOFF_BASE_SECONDS = settings.LIVRA_OUTBOX_BACKOFF_BASE_SECONDS


@pytest.fixture(autouse=True)
def clock(time_machine):
    """Frozen at noon in the store's time zone, outside quiet hours; tests move it on purpose."""
    time_machine.move_to(NOON, tick=False)
    return time_machine


def notify(order, event=NOT_URGENT, key="n1", **kwargs) -> Notification:
    return notification_create(order, event=event, key=key, **kwargs)


def channels_called(scripted) -> list[str]:
    return [call.channel for call in scripted.calls]


def refreshed(message: Message) -> Message:
    message.refresh_from_db()
    return message


def seconds_until(moment: datetime.datetime) -> float:
    return (moment - NOON).total_seconds()


# --- the happy path -------------------------------------------------------------------------
def test_a_notification_is_sent_on_its_first_channel_after_commit(order, scripted, committed):
    with committed():
        notification = notify(order)

    message = notification.messages.get()
    assert (message.channel, message.status, message.attempts) == (WHATSAPP, Message.Status.SENT, 1)
    assert message.provider_message_id == "SC000001"
    assert message.sent_at == NOON
    assert channels_called(scripted) == [WHATSAPP]
    assert scripted.calls[0].outbound.to == order.customer.phone


def test_each_provider_call_leaves_one_attempt_row_with_its_outcome(order, scripted, committed):
    with committed():
        message = notify(order).messages.get()

    message, attempt = refreshed(message), MessageAttempt.objects.get(message=message)
    assert (attempt.number, attempt.provider, attempt.outcome) == (1, "scripted", "accepted")
    assert attempt.provider_message_id == message.provider_message_id
    assert (attempt.started_at, attempt.finished_at) == (NOON, NOON)


def test_a_status_change_notifies_the_customer_through_the_seam(order, scripted, committed):
    with committed():
        order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)

    notification = Notification.objects.get(order=order)
    assert (notification.event, notification.urgent) == (URGENT, True)
    assert channels_called(scripted) == [WHATSAPP]


# --- fallback on a permanent error ------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "code", "final_status"),
    [
        (ErrorKind.INVALID_RECIPIENT, "21211", Message.Status.UNDELIVERABLE),
        (ErrorKind.PERMANENT, "21608", Message.Status.FAILED),
        (ErrorKind.WINDOW_CLOSED, "63016", Message.Status.UNDELIVERABLE),
    ],
)
def test_a_permanent_error_ends_the_channel_and_the_next_channel_is_sent_at_once(
    order, scripted, committed, kind, code, final_status
):
    scripted.script(ProviderError(kind, code, "refused"), channel=WHATSAPP)

    with committed():
        notification = notify(order)

    whatsapp, sms = notification.messages.get(channel=WHATSAPP), notification.messages.get(channel=SMS)
    assert (whatsapp.status, whatsapp.error_code, whatsapp.attempts) == (final_status, code, 1)
    assert (sms.status, sms.fallback_from) == (Message.Status.SENT, whatsapp)
    assert sms.fallback_reason == f"{kind.value} on whatsapp ({code})"
    assert channels_called(scripted) == [WHATSAPP, SMS]


def test_fallback_stops_at_the_first_channel_that_takes_the_message(order, scripted, committed):
    scripted.script(ProviderError(ErrorKind.INVALID_RECIPIENT, "21211"), channel=WHATSAPP)

    with committed():
        notification = notify(order)

    assert channels_called(scripted) == [WHATSAPP, SMS]
    assert not notification.messages.filter(channel=EMAIL).exists()


def test_a_notification_whose_every_channel_fails_is_exhausted(order, scripted, committed):
    scripted.script(*[ProviderError(ErrorKind.PERMANENT, "x")] * 3)

    with committed():
        notification = notify(order)

    notification.refresh_from_db()
    assert notification.status == Notification.Status.EXHAUSTED
    assert channels_called(scripted) == [WHATSAPP, SMS, EMAIL]


# --- never twice ----------------------------------------------------------------------------
def test_a_repeated_trigger_with_the_same_key_is_a_no_op(order, scripted, committed):
    with committed():
        first = notify(order, key="order:1:v1:order_confirmed")
    with committed():
        again = notify(order, key="order:1:v1:order_confirmed")

    assert again == first
    assert Message.objects.filter(order=order).count() == 1
    assert channels_called(scripted) == [WHATSAPP]


def test_a_replayed_status_change_notifies_once(order, scripted, committed):
    with committed():
        order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM, idempotency_key="w1")
        order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM, idempotency_key="w1")

    assert Notification.objects.filter(order=order).count() == 1
    assert channels_called(scripted) == [WHATSAPP]


def test_the_database_refuses_a_second_message_for_one_notification_on_one_channel(order):
    notification = notify(order)
    first = notification.messages.get()

    with pytest.raises(IntegrityError):
        Message.objects.create(
            notification=notification,
            order=order,
            customer=order.customer,
            event=notification.event,
            channel=first.channel,
            provider="scripted",
            idempotency_key="another key",
        )


# --- quiet hours ----------------------------------------------------------------------------
def test_a_non_urgent_message_made_during_quiet_hours_waits_for_nine_in_the_morning(
    order, scripted, clock, django_capture_on_commit_callbacks
):
    clock.move_to(NOON.replace(hour=22, minute=30), tick=False)

    with django_capture_on_commit_callbacks(execute=True) as kicks:
        message = notify(order).messages.get()

    assert message.status == Message.Status.QUEUED
    assert message.next_attempt_at == NOON.replace(day=11, hour=9, minute=0)
    assert kicks == []
    assert scripted.calls == []


def test_the_sweep_does_not_send_a_held_message_before_quiet_hours_end(order, scripted, clock, committed):
    clock.move_to(NOON.replace(hour=22, minute=30), tick=False)
    message = notify(order).messages.get()

    clock.move_to(NOON.replace(day=11, hour=8, minute=59), tick=False)
    with committed():
        outbox_sweep()

    assert refreshed(message).status == Message.Status.QUEUED
    assert scripted.calls == []


def test_the_sweep_sends_a_held_message_once_quiet_hours_end(order, scripted, clock, committed):
    clock.move_to(NOON.replace(hour=22, minute=30), tick=False)
    message = notify(order).messages.get()

    clock.move_to(NOON.replace(day=11, hour=9, minute=1), tick=False)
    with committed():
        outbox_sweep()

    assert refreshed(message).status == Message.Status.SENT
    assert channels_called(scripted) == [WHATSAPP]


def test_a_held_message_goes_through_the_provider_the_store_set_up_while_it_waited(
    scripted, clock, committed
):
    # given a store still on the sandbox when the message is held for the night
    order = OrderFactory()
    clock.move_to(NOON.replace(hour=22, minute=30), tick=False)
    message = notify(order).messages.get()
    assert message.provider == "sandbox"

    # when the store configures its provider before the morning
    use_scripted_provider(order.store)
    clock.move_to(NOON.replace(day=11, hour=9, minute=1), tick=False)
    with committed():
        outbox_sweep()

    assert (refreshed(message).status, message.provider) == (Message.Status.SENT, "scripted")
    assert channels_called(scripted) == [WHATSAPP]


def test_an_urgent_message_is_sent_at_once_during_quiet_hours(order, scripted, clock, committed):
    clock.move_to(NOON.replace(hour=22, minute=30), tick=False)

    with committed():
        message = notify(order, event=URGENT).messages.get()

    assert refreshed(message).status == Message.Status.SENT
    assert channels_called(scripted) == [WHATSAPP]


def test_a_retry_that_would_fall_in_quiet_hours_waits_for_the_morning(order, scripted, clock, committed):
    clock.move_to(NOON.replace(hour=20, minute=59, second=50), tick=False)
    scripted.script(ProviderError(ErrorKind.RETRYABLE, "20429"))

    with committed():
        message = notify(order).messages.get()

    assert refreshed(message).status == Message.Status.QUEUED
    assert message.next_attempt_at == NOON.replace(day=11, hour=9, minute=0)


# --- retries --------------------------------------------------------------------------------
def test_a_retryable_error_queues_the_message_again_within_the_first_backoff_window(
    order, scripted, committed
):
    scripted.script(ProviderError(ErrorKind.RETRYABLE, "30003", "unreachable"))

    with committed():
        message = notify(order).messages.get()

    message = refreshed(message)
    assert (message.status, message.attempts, message.error_code) == (Message.Status.QUEUED, 1, "30003")
    assert BACKOFF_BASE_SECONDS / 2 <= seconds_until(message.next_attempt_at) <= BACKOFF_BASE_SECONDS
    attempt = MessageAttempt.objects.get(message=message)
    assert (attempt.outcome, attempt.error_code, attempt.error) == ("retryable", "30003", "unreachable")
    assert channels_called(scripted) == [WHATSAPP]  # the retry's own kick found it not yet due


def test_each_retry_waits_within_its_exponential_window(order, scripted, clock, committed):
    scripted.script(*[ProviderError(ErrorKind.RETRYABLE, "20429")] * 3)
    with committed():
        message = notify(order).messages.get()

    for attempts in (1, 2, 3):
        message = refreshed(message)
        ceiling = BACKOFF_BASE_SECONDS * 2 ** (attempts - 1)
        waited = (message.next_attempt_at - datetime.datetime.now(datetime.UTC)).total_seconds()
        assert (message.attempts, message.status) == (attempts, Message.Status.QUEUED)
        assert ceiling / 2 <= waited <= ceiling
        clock.move_to(message.next_attempt_at, tick=False)
        with committed():
            message_send(message.pk)

    assert refreshed(message).status == Message.Status.SENT
    assert list(message.attempt_rows.values_list("number", "outcome")) == [
        (1, "retryable"),
        (2, "retryable"),
        (3, "retryable"),
        (4, "accepted"),
    ]


@pytest.mark.parametrize("attempts", [1, 4, 8, 20])
def test_the_backoff_is_jittered_between_half_and_all_of_its_capped_ceiling(attempts):
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))

    delays = {retry_delay(attempts, None) for _ in range(50)}

    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(delays) > 1


def test_the_backoff_base_is_a_setting(settings):
    settings.LIVRA_OUTBOX_BACKOFF_BASE_SECONDS = 2

    delays = [retry_delay(attempts, None) for attempts in (1, 2) for _ in range(20)]

    assert all(1 <= delay <= 2 for delay in delays[:20])
    assert all(2 <= delay <= 4 for delay in delays[20:])


def test_a_retry_after_longer_than_the_backoff_is_honoured(order, scripted, clock, committed):
    scripted.script(ProviderError(ErrorKind.RETRYABLE, "429", retry_after=600))

    with committed():
        message = notify(order).messages.get()

    message = refreshed(message)
    assert seconds_until(message.next_attempt_at) >= 600
    assert MessageAttempt.objects.get(message=message).retry_after_seconds == 600
    # Not one second sooner, not even when the sweep runs.
    clock.move_to(NOON + datetime.timedelta(seconds=599), tick=False)
    with committed():
        outbox_sweep()
        message_send(message.pk)
    assert len(scripted.calls) == 1


def test_after_the_last_attempt_the_message_fails_and_the_next_channel_is_tried(
    order, scripted, clock, committed
):
    scripted.script(*[ProviderError(ErrorKind.RETRYABLE, "30003")] * MAX_ATTEMPTS, channel=WHATSAPP)
    with committed():
        notification = notify(order)
    whatsapp = notification.messages.get(channel=WHATSAPP)

    while refreshed(whatsapp).status == Message.Status.QUEUED:
        clock.move_to(whatsapp.next_attempt_at, tick=False)
        with committed():
            message_send(whatsapp.pk)

    assert (whatsapp.status, whatsapp.attempts) == (Message.Status.FAILED, MAX_ATTEMPTS)
    assert whatsapp.attempt_rows.count() == MAX_ATTEMPTS
    assert notification.messages.get(channel=SMS).status == Message.Status.SENT
    assert channels_called(scripted) == [WHATSAPP] * MAX_ATTEMPTS + [SMS]


def test_an_unexpected_exception_in_a_provider_is_retried_with_its_text_kept(order, scripted, committed):
    def bug(outbound):
        raise KeyError("sid")

    scripted.script(bug)

    with committed():
        message = notify(order).messages.get()

    attempt = MessageAttempt.objects.get(message=message)
    assert refreshed(message).status == Message.Status.QUEUED
    assert (attempt.outcome, attempt.error) == ("retryable", "KeyError('sid')")


# --- unknown outcome ------------------------------------------------------------------------
def test_an_unknown_outcome_is_never_resent(order, scripted, clock, committed):
    scripted.script(ProviderError(ErrorKind.UNKNOWN, "no_answer", "ReadTimeout"))
    with committed():
        message = notify(order).messages.get()

    clock.move_to(NOON + datetime.timedelta(hours=6), tick=False)
    with committed():
        outbox_sweep()
        message_send(message.pk)

    message = refreshed(message)
    assert message.status == Message.Status.UNKNOWN
    assert MessageAttempt.objects.get(message=message).outcome == "unknown"
    assert not message.fallbacks.exists()  # not urgent: silence is not a reason to try elsewhere
    assert len(scripted.calls) == 1


def test_an_urgent_unknown_outcome_falls_back_once_the_receipt_timeout_passes(
    order, scripted, clock, committed
):
    scripted.script(ProviderError(ErrorKind.UNKNOWN, "no_answer"), channel=WHATSAPP)
    with committed():
        notification = notify(order, event=URGENT)

    clock.move_to(NOON + datetime.timedelta(seconds=599), tick=False)
    with committed():
        outbox_sweep()
    assert channels_called(scripted) == [WHATSAPP]

    clock.move_to(NOON + datetime.timedelta(seconds=601), tick=False)
    with committed():
        outbox_sweep()
    assert channels_called(scripted) == [WHATSAPP, SMS]
    sms = notification.messages.get(channel=SMS)
    assert sms.fallback_reason == "no delivery receipt on whatsapp within 600 s"
    assert notification.messages.get(channel=WHATSAPP).status == Message.Status.UNKNOWN


# --- receipts out of order ------------------------------------------------------------------
def receipt(message: Message, status: str, **kwargs) -> Message:
    return message_apply_status("scripted", StatusUpdate(message.provider_message_id, status, **kwargs))


@pytest.fixture
def sent_message(order, scripted, committed) -> Message:
    with committed():
        notification = notify(order)
    return notification.messages.get()


def test_a_late_sent_receipt_does_not_undo_delivered(sent_message):
    receipt(sent_message, "delivered")
    receipt(sent_message, "sent")

    message = refreshed(sent_message)
    assert message.status == Message.Status.DELIVERED
    assert message.notification.status == Notification.Status.DELIVERED


def test_read_without_delivered_counts_as_delivered_and_read(sent_message, clock):
    clock.move_to(NOON + datetime.timedelta(minutes=5), tick=False)

    receipt(sent_message, "read")

    message = refreshed(sent_message)
    assert message.status == Message.Status.READ
    assert message.delivered_at == message.read_at == NOON + datetime.timedelta(minutes=5)
    assert message.notification.status == Notification.Status.DELIVERED


def test_a_failure_after_delivered_is_ignored(sent_message, scripted):
    receipt(sent_message, "delivered")

    receipt(sent_message, "failed", error_code="30008")

    message = refreshed(sent_message)
    assert (message.status, message.error_code) == (Message.Status.DELIVERED, "")
    assert not message.fallbacks.exists()
    assert len(scripted.calls) == 1


def test_a_failure_receipt_on_a_sent_message_falls_back_to_the_next_channel(
    sent_message, scripted, committed
):
    with committed():
        receipt(sent_message, "undeliverable", error_code="30005", error_text="unknown destination")

    message = refreshed(sent_message)
    assert (message.status, message.error_code) == (Message.Status.UNDELIVERABLE, "30005")
    assert channels_called(scripted) == [WHATSAPP, SMS]


# --- render failures ------------------------------------------------------------------------
def test_a_template_that_cannot_be_rendered_fails_its_message_sends_nothing_and_falls_back(
    order, scripted, committed
):
    # given a WhatsApp template that needs the tracking link (the order has none) and an SMS one
    MessageTemplate.objects.create(
        store=order.store,
        event="out_for_delivery",
        channel=WHATSAPP,
        language="fr",
        body="Suivi : {tracking_link}",
    )
    MessageTemplate.objects.create(
        store=order.store, event="out_for_delivery", channel=SMS, language="fr", body="{order_number} arrive"
    )

    with committed():
        notification = notify(order, event="out_for_delivery")

    whatsapp = notification.messages.get(channel=WHATSAPP)
    assert (whatsapp.status, whatsapp.error_code) == (Message.Status.FAILED, "render_error")
    assert "tracking_link" in whatsapp.error
    assert whatsapp.attempt_rows.count() == 0
    sms = notification.messages.get(channel=SMS)
    assert sms.fallback_reason.startswith("template could not be rendered: no value for: tracking_link")
    assert channels_called(scripted) == [SMS]
    assert scripted.calls[0].outbound.body == f"{order.number} arrive"


def test_a_shipped_message_without_carrier_or_tracking_link_goes_out_with_the_untracked_text(
    order, scripted, committed
):
    # given an order marked shipped by hand: no carrier, no tracking link
    with committed():
        notification = notify(order, event="order_shipped")

    whatsapp = notification.messages.get(channel=WHATSAPP)
    assert whatsapp.status == Message.Status.SENT
    assert whatsapp.template.event == "order_shipped_untracked"
    assert channels_called(scripted) == [WHATSAPP]
    assert "lien de suivi" in scripted.calls[0].outbound.body


def test_a_shipped_message_with_its_tracking_link_uses_the_shipped_text(order, scripted, committed):
    # given the store reported the parcel (orders.services.ingest writes this "shipped" event)
    order.events.create(
        type="shipped",
        source=OrderEvent.Source.STORE,
        payload={"carrier": "Amana", "tracking_url": "https://track.example/AB123"},
        status_version=99,
    )

    with committed():
        notify(order, event="order_shipped")

    assert "https://track.example/AB123" in scripted.calls[0].outbound.body


# --- concurrency (PostgreSQL) ----------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_triggers_with_one_key_make_one_notification(scripted):
    # given two transactions that both see no notification yet under the same key
    order = OrderFactory()
    use_scripted_provider(order.store)
    first_inserted, results = threading.Event(), {}

    def trigger(name: str, hold: float) -> None:
        try:
            with transaction.atomic():
                results[name] = notify(order, key="concurrent").pk
                first_inserted.set()
                time.sleep(hold)  # the other one inserts meanwhile and waits on the unique index
        except Exception as exc:  # the assertion below names it
            results[name] = exc
        finally:
            connection.close()

    # when they run side by side
    first = threading.Thread(target=trigger, args=("first", 0.5))
    first.start()
    first_inserted.wait(5)
    second = threading.Thread(target=trigger, args=("second", 0))
    second.start()
    first.join(10)
    second.join(10)

    # then the second one returns the first one's notification instead of failing
    assert results["first"] == results["second"]
    assert Notification.objects.filter(idempotency_key="concurrent").count() == 1
    assert Message.objects.filter(order=order).count() == 1
    assert channels_called(scripted) == [WHATSAPP]
