"""The outbox sweep (celery-beat, every minute): recover lost kicks, expired leases and silence."""

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
from messaging.services.outbox import (
    LOST_KICK_GRACE,
    message_set_status,
    notification_try_next_channel_locked,
)
from messaging.services.wakeup import outbox_wake

logger = logging.getLogger(__name__)
BATCH = 500


@dataclass
class SweepResult:
    kicked: int = 0
    recovered_sent: int = 0
    marked_unknown: int = 0
    fell_back: int = 0


def outbox_sweep() -> SweepResult:
    result = SweepResult()
    now = timezone.now()
    result.kicked = _kick_due(now)
    result.recovered_sent, result.marked_unknown = _recover_expired_leases(now)
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


def _recover_expired_leases(now) -> tuple[int, int]:
    """A worker died mid-send. If its attempt shows the provider accepted, the message was sent;
    otherwise nobody knows whether the request went out, so it is not resent blindly."""
    sent = unknown = 0
    ids = list(
        Message.objects.filter(status=Message.Status.SENDING, lease_expires_at__lt=now).values_list(
            "pk", flat=True
        )[:BATCH]
    )
    for message_id in ids:
        with transaction.atomic():
            message = (
                Message.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=message_id, status=Message.Status.SENDING, lease_expires_at__lt=now)
                .first()
            )
            if message is None:
                continue
            attempt = message.attempt_rows.order_by("-number").first()
            message.lease_expires_at = None
            if attempt is not None and attempt.provider_message_id:
                if attempt.outcome == MessageAttempt.Outcome.PENDING:
                    MessageAttempt.objects.filter(pk=attempt.pk).update(
                        outcome=MessageAttempt.Outcome.ACCEPTED, finished_at=now
                    )
                message.provider_message_id = attempt.provider_message_id
                message.sent_at = attempt.finished_at or now
                message_set_status(
                    message, Message.Status.SENT, "sweep", "lease expired after the provider accepted"
                )
                sent += 1
            else:
                if attempt is not None:
                    MessageAttempt.objects.filter(pk=attempt.pk).update(
                        outcome=MessageAttempt.Outcome.UNKNOWN, finished_at=now
                    )
                message_set_status(
                    message, Message.Status.UNKNOWN, "sweep", "lease expired with no answer recorded"
                )
                unknown += 1
            message.save(update_fields=["lease_expires_at", "provider_message_id", "sent_at", "status"])
    return sent, unknown


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
