"""Delivery receipts: move a message's status forward only, and stop its fallback once delivered."""

import logging

from django.db import transaction
from django.utils import timezone

from messaging.models import Message, Notification
from messaging.providers import ErrorKind, StatusUpdate
from messaging.services.consent import consent_record_provider_opt_out
from messaging.services.outbox import message_set_status, notification_try_next_channel_locked

logger = logging.getLogger(__name__)

# How far along each status is. Receipts only ever move a message to a higher rank, so a late
# "sent" never overwrites "delivered", and "read" may arrive without "delivered".
RANK = {
    Message.Status.QUEUED: 0,
    Message.Status.SENDING: 1,
    Message.Status.UNKNOWN: 1,
    Message.Status.SENT: 2,
    Message.Status.DELIVERED: 3,
    Message.Status.READ: 4,
}
FAILURES = {Message.Status.FAILED, Message.Status.UNDELIVERABLE}


def message_apply_status(provider: str, update: StatusUpdate) -> Message | None:
    """Apply one receipt. Returns the message, or None when no message matches it."""
    with transaction.atomic():
        candidates = Message.objects.select_for_update(of=("self",)).select_related(
            "notification", "customer"
        )
        message = None
        if update.provider_message_id:  # "" would match any message not yet accepted
            message = candidates.filter(
                provider=provider, provider_message_id=update.provider_message_id
            ).first()
        if message is None:
            message = _message_by_correlation(candidates, provider, update)
        if message is None:
            return None
        if update.status in FAILURES:
            _apply_failure(message, update)
        elif RANK.get(update.status, -1) > RANK.get(message.status, 99):
            _apply_progress(message, update)
    return message


def _message_by_correlation(candidates, provider: str, update: StatusUpdate) -> Message | None:
    """Our own message id, echoed back by providers that carry correlation data (SendGrid's
    custom_args), for receipts whose provider id is not the one we stored."""
    message_id = str(update.correlation.get("message_id") or "")
    if not (message_id.isascii() and message_id.isdigit()):
        return None
    message = candidates.filter(provider=provider, pk=int(message_id)).first()
    if message is None:
        return None
    # Our id was signed into the callback (URL or custom args) by us: it is authoritative.
    stored, given = message.provider_message_id, update.provider_message_id
    if given and not stored:
        # The send ended "unknown" (or its answer is still on the way): now we know the id.
        message.provider_message_id = given
        message.save(update_fields=["provider_message_id"])
    return message


def _apply_progress(message: Message, update: StatusUpdate) -> None:
    now = update.occurred_at or timezone.now()
    fields = ["status"]
    if update.status in (Message.Status.DELIVERED, Message.Status.READ) and message.delivered_at is None:
        message.delivered_at = now
        fields.append("delivered_at")
    if update.status == Message.Status.READ:
        message.read_at = now
        fields.append("read_at")
    if message.sent_at is None:
        message.sent_at = now
        fields.append("sent_at")
    message_set_status(message, update.status, "receipt", f"{message.provider} said {update.status}")
    message.save(update_fields=fields)
    notification = message.notification
    if update.status in (Message.Status.DELIVERED, Message.Status.READ) and notification is not None:
        # Stop at the first delivered: no further channel is tried for this notification.
        Notification.objects.filter(pk=notification.pk).update(status=Notification.Status.DELIVERED)


def _apply_failure(message: Message, update: StatusUpdate) -> None:
    if update.error_kind == ErrorKind.OPTED_OUT:
        # A spam report or an unsubscribe comes after delivery by nature: keep the customer's
        # stop even when the message's own status does not move.
        consent_record_provider_opt_out(message, update.error_code)
    if message.status in FAILURES or RANK.get(message.status, 0) >= RANK[Message.Status.DELIVERED]:
        return  # already failed, or it reached the customer: a stray failure changes nothing
    message.error_code, message.error = update.error_code[:40], update.error_text[:2000]
    message.failed_at = update.occurred_at or timezone.now()
    message_set_status(
        message, update.status, "receipt", f"{update.error_code} {update.error_text}".strip()[:300]
    )
    message.save(update_fields=["error_code", "error", "failed_at", "status"])
    notification_try_next_channel_locked(
        message, f"{message.channel} receipt: {update.status} {update.error_code}".strip()
    )
