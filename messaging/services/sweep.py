"""The outbox sweep (celery-beat, every minute): recover expired leases, lost kicks and silence."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging.models import (
    Message,
    MessageAttempt,
    MessagingSettings,
    Notification,
    default_receipt_timeouts,
)
from messaging.providers import ProviderError
from messaging.services.outbox import (
    LOST_KICK_GRACE,
    attempt_answer,
    message_record_failure,
    message_set_status,
    notification_try_next_channel_locked,
)
from messaging.services.routing import messaging_settings_for, quiet_hours_end
from messaging.services.wakeup import outbox_wake

logger = logging.getLogger(__name__)
BATCH = 500


@dataclass
class SweepResult:
    requeued: int = 0  # expired leases whose call never started
    recovered_sent: int = 0
    recovered_failed: int = 0  # expired leases whose call had failed: retried, fallen back or ended
    marked_unknown: int = 0
    kicked: int = 0
    fell_back: int = 0


def outbox_sweep() -> SweepResult:
    result = SweepResult()
    now = timezone.now()
    (
        result.requeued,
        result.recovered_sent,
        result.recovered_failed,
        result.marked_unknown,
    ) = _recover_expired_leases(now)
    result.kicked = _kick_due(now)  # the messages queued again among them
    result.fell_back = _fall_back_when_silent(now)
    logger.info("outbox sweep %s", result)
    return result


def _kick_due(now) -> int:
    """Queued rows that are due but whose wake-up was lost (crash, broker down) or held for quiet hours."""
    # Fresh rows are left alone for a grace period: their own on-commit wake-up is on its way.
    due = Message.objects.filter(status=Message.Status.QUEUED, next_attempt_at__lte=now).filter(
        Q(next_attempt_at__lte=now - LOST_KICK_GRACE) | Q(created_at__lte=now - LOST_KICK_GRACE)
    )
    count = due.count()
    if count:
        outbox_wake(force=True)  # a drain sends every due row, these among them
    return count


def _recover_expired_leases(now) -> tuple[int, int, int, int]:
    """Messages whose worker died mid-batch (or outlived its lease) end by what their attempt
    row shows: (queued again, sent, failed, unknown).

    - its call never started: nothing went out, so the message is queued again and the attempt
      row dropped (a call never made does not use up one of its attempts);
    - the provider's answer came in: it is recorded as the worker would have (sent; or the
      failure's retry, fallback or end);
    - it started and no answer came: the request may have gone out, so it is not resent blindly.
    """
    requeued = sent = failed = unknown = 0
    ids = list(
        Message.objects.filter(status=Message.Status.SENDING, lease_expires_at__lt=now).values_list(
            "pk", flat=True
        )[:BATCH]
    )
    for message_id in ids:
        with transaction.atomic():
            message = (
                Message.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("notification", "order__store")
                .filter(pk=message_id, status=Message.Status.SENDING, lease_expires_at__lt=now)
                .first()
            )
            if message is None:
                continue
            # Locked: a drain about to start this call waits, then finds its attempt row gone.
            attempt = (
                MessageAttempt.objects.select_for_update()
                .filter(message=message, number=message.attempts)
                .first()
            )
            answer = attempt_answer(attempt) if attempt is not None else None
            if attempt is None or attempt.started_at is None:
                _queue_again(message, attempt, now)
                requeued += 1
            elif isinstance(answer, ProviderError):
                message_record_failure(message.pk, attempt.pk, answer)
                failed += 1
            elif answer is not None:
                _record_sent(message, attempt, answer.provider_message_id, now)
                sent += 1
            else:
                _mark_unknown(message, attempt, now)
                unknown += 1
    return requeued, sent, failed, unknown


def _record_sent(message: Message, attempt: MessageAttempt, provider_message_id: str, now) -> None:
    message.sent_at = attempt.finished_at or now
    MessageAttempt.objects.filter(pk=attempt.pk).update(
        outcome=MessageAttempt.Outcome.ACCEPTED, finished_at=message.sent_at
    )
    message.provider_message_id = provider_message_id
    message.lease_expires_at = None
    message_set_status(message, Message.Status.SENT, "sweep", "lease expired after the provider accepted")
    message.save(update_fields=["lease_expires_at", "provider_message_id", "sent_at", "status"])


def _mark_unknown(message: Message, attempt: MessageAttempt, now) -> None:
    """The request may have reached the provider: resending could text the customer twice."""
    MessageAttempt.objects.filter(pk=attempt.pk).update(
        outcome=MessageAttempt.Outcome.UNKNOWN, finished_at=now
    )
    message.lease_expires_at = None
    message_set_status(message, Message.Status.UNKNOWN, "sweep", "lease expired with no answer recorded")
    message.save(update_fields=["lease_expires_at", "status"])


def _queue_again(message: Message, attempt: MessageAttempt | None, now) -> None:
    """The worker holding ``message`` stopped before calling the provider: send it again."""
    if attempt is not None:
        attempt.delete()
    message.attempts -= 1
    message.lease_expires_at = None
    if not (message.notification and message.notification.urgent):
        # Held until morning, as a new message would be, should the night have begun meanwhile.
        held_until = quiet_hours_end(messaging_settings_for(message.order.store), now)
        message.next_attempt_at = held_until or message.next_attempt_at
    message_set_status(
        message, Message.Status.QUEUED, "sweep", "lease expired before the provider was called; queued again"
    )
    message.save(update_fields=["attempts", "lease_expires_at", "next_attempt_at", "status"])


def _fall_back_when_silent(now) -> int:
    """Urgent notifications whose current message got no delivery receipt in time move on."""
    last_attempt_at = MessageAttempt.objects.filter(message=OuterRef("pk")).order_by("-number")
    # Silence is counted from the send, or for an unknown outcome from the call that went unanswered.
    silent_since = Coalesce("sent_at", Subquery(last_attempt_at.values("started_at")[:1]), "created_at")
    waiting = list(
        Message.objects.filter(
            notification__urgent=True,
            notification__status=Notification.Status.PENDING,
            status__in=[Message.Status.SENT, Message.Status.UNKNOWN],
            fallbacks__isnull=True,
        )
        .annotate(silent_since=silent_since)
        .order_by("silent_since", "pk")
        .values("pk", "channel", "silent_since", "order__store_id")[:BATCH]
    )
    timeouts_by_store = dict(
        MessagingSettings.objects.filter(
            store_id__in={row["order__store_id"] for row in waiting}
        ).values_list("store_id", "receipt_timeouts")
    )
    count = 0
    for row in waiting:
        timeouts = {**default_receipt_timeouts(), **(timeouts_by_store.get(row["order__store_id"]) or {})}
        timeout = timedelta(seconds=int(timeouts.get(row["channel"], 900)))
        if row["silent_since"] + timeout > now:
            continue
        with transaction.atomic():
            locked = (
                Message.objects.select_for_update(of=("self",))
                .select_related("notification")
                .filter(pk=row["pk"], status__in=[Message.Status.SENT, Message.Status.UNKNOWN])
                .first()
            )
            if (
                locked is None
                or locked.fallbacks.exists()
                or locked.notification.status != Notification.Status.PENDING
            ):
                continue  # a receipt or another sweep got there first
            reason = f"no delivery receipt on {locked.channel} within {int(timeout.total_seconds())} s"
            if notification_try_next_channel_locked(locked, reason):
                count += 1
    return count
