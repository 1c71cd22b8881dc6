"""The outbox: notifications and their messages, sent after commit, retried, and fallen back.

Every step that changes a row runs in a short transaction; the provider call runs outside any.
"""

import logging
import math
import random
from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from config.celery import task_publish
from messaging.events import FALLBACK_EVENTS, URGENT_EVENTS
from messaging.models import (
    Channel,
    Message,
    MessageAttempt,
    MessageStatusChange,
    Notification,
    Purpose,
)
from messaging.providers import (
    ErrorKind,
    OutboundMessage,
    ProviderConfig,
    ProviderError,
    SendResult,
    TemplateRef,
)
from messaging.services.consent import consent_allows, consent_record_provider_opt_out
from messaging.services.rendering import RenderError, render_text
from messaging.services.routing import (
    NO_PROVIDER,
    channel_provider_for,
    channel_providers_for,
    contact_point,
    messaging_settings_for,
    no_provider_note,
    quiet_hours_end,
    route_channels,
)
from messaging.services.wakeup import outbox_wake_on_commit
from messaging.signals import notification_exhausted
from orders.insert_once import insert_once

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
# The first retry waits half to all of the base (settings.LIVRA_OUTBOX_BACKOFF_BASE_SECONDS, 30 s).
BACKOFF_CAP_SECONDS = 3600
SENDING_LEASE = timedelta(seconds=120)
LOST_KICK_GRACE = timedelta(seconds=60)
UNREAD = object()  # message_create's provider when the caller has not read it

# Provider error kind → the message status it ends in (all but retryable/unknown end the channel).
FINAL_STATUS_FOR = {
    ErrorKind.PERMANENT: Message.Status.FAILED,
    ErrorKind.OPTED_OUT: Message.Status.UNDELIVERABLE,
    ErrorKind.INVALID_RECIPIENT: Message.Status.UNDELIVERABLE,
    ErrorKind.WINDOW_CLOSED: Message.Status.UNDELIVERABLE,
}


# --- creating -------------------------------------------------------------------------------
def notification_create(
    order, *, event: str, key: str, purpose: str = Purpose.TRANSACTIONAL, only_channel: str | None = None
) -> Notification:
    """Plan ``event``'s notification for ``order`` (once per ``key``) and queue its first message.

    ``only_channel``: this channel alone, if routing allows it (rules that tell every opted-in
    channel make one notification per channel).
    """
    existing = Notification.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing  # a repeated trigger is a no-op
    customer = order.customer
    settings = messaging_settings_for(order.store)
    channels = route_channels(customer, settings, purpose)
    if only_channel is not None:
        channels = [channel for channel in channels if channel == only_channel]
    # A channel the store chose no provider for is not tried: nothing would carry the message.
    providers = channel_providers_for(order.store, channels)
    without_provider = [channel for channel in channels if channel not in providers]
    channels = [channel for channel in channels if channel in providers]
    if channels:
        status = Notification.Status.PENDING
    else:
        status = Notification.Status.NO_PROVIDER if without_provider else Notification.Status.NO_CHANNEL
    notification = Notification(
        order=order,
        customer=customer,
        event=event,
        purpose=purpose,
        urgent=event in URGENT_EVENTS,
        channels=channels,
        idempotency_key=key,
        status=status,
        routing_note=no_provider_note(without_provider),
    )
    # ON CONFLICT, no savepoint: a concurrent twin that committed first must not break the
    # caller's transaction.
    if not insert_once(notification, ("idempotency_key",)):
        return Notification.objects.get(idempotency_key=key)
    if channels:
        message_create(notification, channels[0], settings=settings, provider=providers[channels[0]])
    else:
        logger.info("notification not routed notification_id=%s status=%s", notification.pk, status)
    return notification


def message_create(
    notification: Notification,
    channel: str,
    *,
    fallback_from=None,
    reason: str = "",
    settings=None,
    provider=UNREAD,
) -> Message:
    """Queue ``notification`` on ``channel`` and kick the send after commit (or at quiet hours' end).

    ``settings``: the store's MessagingSettings when the caller has them already; ``provider``:
    the store's enabled provider for ``channel`` (None: it has none) when the caller has read it.
    """
    order = notification.order
    if provider is UNREAD:
        provider = channel_provider_for(order.store, channel)
    now = timezone.now()
    if not notification.urgent and settings is None:
        settings = messaging_settings_for(order.store)
    not_before = None if notification.urgent else quiet_hours_end(settings, now)
    message = Message.objects.create(
        notification=notification,
        order=order,
        customer=notification.customer,
        event=notification.event,
        channel=channel,
        provider=provider.provider if provider else "",  # the send fails it, and moves on
        recipient=contact_point(notification.customer, channel),
        idempotency_key=f"{notification.idempotency_key}:{channel}",
        next_attempt_at=not_before or now,
        fallback_from=fallback_from,
        fallback_reason=reason,
    )
    _status_change(message, "", Message.Status.QUEUED, "outbox", reason or "queued")
    if not_before is None:
        outbox_wake_on_commit()
    # else: held for quiet hours; the outbox sweep sends it when the window opens.
    return message


def message_retry_on_commit(message_id: int, countdown: float) -> None:
    """Send ``message_id`` again in ``countdown`` seconds, once this transaction commits (if the
    broker is away, the outbox sweep sends it once it is due: it is queued with its retry time)."""
    from messaging.tasks import message_send_task

    transaction.on_commit(lambda: task_publish(message_send_task, message_id, countdown=countdown))


# --- sending (messaging.services.dispatch claims, calls the provider and records) ---------------
# What claiming a message changes on its row (``message_prepare_send`` sets them).
CLAIM_FIELDS = ["provider", "template", "body", "subject", "status", "attempts", "lease_expires_at"]


def message_prepare_send(message: Message, now, lookups):
    """Check a claimed, due message may still go, render it and mark it sending (in memory).

    Returns (outbound, provider config); or None when it must not go after all, in which case
    it has been finished and its notification moved on. The caller holds the row lock and saves
    ``CLAIM_FIELDS`` with one attempt row and one status change. ``lookups`` answers what else
    the send reads (``messaging.services.dispatch.BatchLookups``).
    """
    refusal = _send_refusal(message, lookups.settings(message.order.store))
    if refusal is not None:
        status, code, reason = refusal
        _finish(message, status, code, reason, "send task")
        notification_try_next_channel_locked(message, reason)
        return None
    # The store's provider now, not when the message was queued: a store that set up a real
    # provider while this message waited (quiet hours, backoff) must not send it via the old one.
    configured = lookups.provider(message.order.store, message.channel)
    if configured is None:  # disabled or removed while the message waited
        reason = f"{NO_PROVIDER} for {message.channel}"
        _finish(message, Message.Status.FAILED, "no_provider", reason, "send task")
        notification_try_next_channel_locked(message, reason)
        return None
    message.provider = configured.provider
    try:
        outbound, template = _outbound(message, sender=configured.sender, lookups=lookups)
    except RenderError as exc:
        _finish(message, Message.Status.FAILED, "render_error", str(exc), "outbox")
        notification_try_next_channel_locked(message, f"template could not be rendered: {exc}")
        return None
    message.template = template
    message.body, message.subject = outbound.body, outbound.subject
    message.status = Message.Status.SENDING
    message.attempts += 1
    message.lease_expires_at = now + SENDING_LEASE
    config = ProviderConfig(configured.provider, configured.sender, configured.credentials_env_prefix)
    return outbound, config


def _send_refusal(message: Message, settings) -> tuple[str, str, str] | None:
    """Why a due message must not go after all: things may have changed while it waited
    (quiet hours, backoff), and the customer's latest word is the one that counts."""
    notification = message.notification
    if notification is not None and notification.status == Notification.Status.DELIVERED:
        # Stop at the first delivered: a late receipt on an earlier channel got there first.
        return Message.Status.FAILED, "superseded", "another channel already delivered the notification"
    purpose = notification.purpose if notification is not None else Purpose.TRANSACTIONAL
    if not consent_allows(message.customer, message.channel, purpose, policy=settings.transactional_policy):
        return Message.Status.UNDELIVERABLE, "no_consent", f"no consent on {message.channel} any more"
    if not message.recipient:
        return Message.Status.UNDELIVERABLE, "no_contact", f"no contact point for {message.channel}"
    return None


def _rendered(event: str, message: Message, context: dict, lookups):
    """(template, body, subject) of ``event`` for the message's store, channel and language."""
    customer = message.customer
    template = lookups.template(message.order.store, event, message.channel, customer.language)
    if template is None:
        raise RenderError(f"no template for {event} on {message.channel}")
    body = render_text(template.body, context, customer.language)
    subject = render_text(template.subject, context, customer.language) if template.subject else ""
    return template, body, subject


def _outbound(message: Message, *, sender: str, lookups):
    order, customer = message.order, message.customer
    context = lookups.context(order, customer.language, customer)
    try:
        template, body, subject = _rendered(message.event, message, context, lookups)
    except RenderError:
        fallback = FALLBACK_EVENTS.get(message.event)
        if fallback is None:
            raise
        try:
            template, body, subject = _rendered(fallback, message, context, lookups)
        except RenderError:
            raise RenderError(f"neither {message.event} nor {fallback} could be rendered") from None
    ref = None
    if template.whatsapp_template_name or template.twilio_content_sid or template.sendgrid_template_id:
        ref = TemplateRef(
            whatsapp_name=template.whatsapp_template_name,
            whatsapp_language=template.whatsapp_language_code or customer.language,
            body_parameters=tuple(
                render_text("{" + name + "}", context) for name in template.body_parameters
            ),
            quick_replies=tuple(template.buttons),
            twilio_content_sid=template.twilio_content_sid,
            sendgrid_template_id=template.sendgrid_template_id,
            data={name: value for name, value in context.items() if value not in (None, "")},
        )
    window_open = message.channel == Channel.WHATSAPP and lookups.window_open(customer)
    reply_buttons = ()
    if window_open and template.buttons:
        # Inside the 24 h window interactive buttons may go instead of a template's quick replies.
        reply_buttons = tuple({"id": f"{b['id']}:{order.pk}", "title": b["title"]} for b in template.buttons)
    outbound = OutboundMessage(
        message_id=message.pk,
        channel=message.channel,
        to=message.recipient,
        sender=sender,
        body=body,
        subject=subject,
        template=ref,
        reply_buttons=reply_buttons,
        window_open=window_open,
        correlation={"message_id": str(message.pk), "order_id": str(order.pk)},
        status_callback_url=status_callback_url(message.provider, order.store.slug, message.pk),
    )
    return outbound, template


def status_callback_url(provider: str, store_slug: str, message_id: int | None = None) -> str:
    path = reverse("messaging:provider-status", args=[provider, store_slug])
    # Our id rides along (and is signed with the URL), so a receipt still finds a message
    # whose send ended "unknown" before the provider's id was known.
    query = f"?message_id={message_id}" if message_id is not None else ""
    return f"{django_settings.LIVRA_PUBLIC_URL.rstrip('/')}{path}{query}"


# An attempt's answer, then its id. Plain SQL: every provider call passes here (several at once
# while a batch sends), and bulk_update's CASE cost more Python than the statements take.
_ANSWER_SQL = (
    "UPDATE messaging_messageattempt SET outcome = %s, provider_message_id = %s, error_code = %s,"
    " error = %s, retry_after_seconds = %s, finished_at = %s WHERE id = %s"
)


def attempts_record_answers(answers: list[tuple[int, SendResult | ProviderError, datetime]]) -> None:
    """Write the provider's answers, given as (attempt id, answer, when it came), on their attempt
    rows, in one round trip (psycopg's pipeline)."""
    rows = []
    for attempt_id, answer, at in answers:
        if isinstance(answer, SendResult):
            values = [MessageAttempt.Outcome.ACCEPTED, answer.provider_message_id, "", "", None]
        else:
            retry_after = math.ceil(answer.retry_after) if answer.retry_after is not None else None
            values = [answer.kind.value, "", answer.code[:40], answer.text[:2000], retry_after]
        rows.append([*values, connection.ops.adapt_datetimefield_value(at), attempt_id])
    with connection.cursor() as cursor:
        cursor.executemany(_ANSWER_SQL, rows)


def attempt_answer(attempt: MessageAttempt) -> SendResult | ProviderError | None:
    """The provider's answer as ``attempt`` recorded it; None when it records none (the call is
    under way, or ended without an answer)."""
    if attempt.provider_message_id:
        return SendResult(provider_message_id=attempt.provider_message_id)
    if attempt.outcome in (
        MessageAttempt.Outcome.PENDING,
        MessageAttempt.Outcome.ACCEPTED,
        MessageAttempt.Outcome.UNKNOWN,
    ):
        return None
    return ProviderError(
        ErrorKind(attempt.outcome), attempt.error_code, attempt.error, attempt.retry_after_seconds
    )


def messages_record_accepted(accepted: list[tuple[int, int, str, datetime]]) -> list[Message]:
    """Record provider acceptances, given as (message id, attempt id, provider's id, when it
    answered), in one transaction."""
    provider_ids = {message_id: provider_id for message_id, _, provider_id, _ in accepted}
    answered_at = {message_id: at for message_id, _, _, at in accepted}
    changes, newly_sent, settled_meanwhile = [], [], []
    with transaction.atomic():
        # In id order: two batches that overlap wait for each other instead of deadlocking.
        messages = list(Message.objects.select_for_update().filter(pk__in=provider_ids).order_by("pk"))
        attempts_record_answers(
            [(attempt_id, SendResult(provider_id), at) for _, attempt_id, provider_id, at in accepted]
        )
        for message in messages:
            provider_id = provider_ids[message.pk]
            if message.status not in (Message.Status.SENDING, Message.Status.UNKNOWN):
                # Settled meanwhile (a fast receipt matched by correlation): keep that news, but
                # remember the provider's id so later receipts find the message too.
                if not message.provider_message_id:
                    message.provider_message_id = provider_id
                    settled_meanwhile.append(message)
                continue
            # UNKNOWN: the call outlived its lease and the sweep gave up on it; the answer came after all.
            changes.append(
                _status_change_row(message, Message.Status.SENT, "send task", "accepted by the provider")
            )
            message.status = Message.Status.SENT
            message.provider_message_id = provider_id
            message.sent_at = answered_at[message.pk]
            message.lease_expires_at = None
            newly_sent.append(message)
        Message.objects.bulk_update(settled_meanwhile, ["provider_message_id"])
        Message.objects.bulk_update(
            newly_sent, ["provider_message_id", "sent_at", "lease_expires_at", "status"]
        )
        MessageStatusChange.objects.bulk_create(changes)
    for message in newly_sent:
        logger.info("message accepted message_id=%s provider=%s", message.pk, message.provider)
    by_id = {message.pk: message for message in messages}
    return [by_id[message_id] for message_id, _, _, _ in accepted]


def message_record_failure(message_id: int, attempt_id: int, exc: ProviderError) -> Message:
    now = timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("notification", "customer", "order__store")
            .get(pk=message_id)
        )
        attempts_record_answers([(attempt_id, exc, now)])
        if message.status not in (Message.Status.SENDING, Message.Status.UNKNOWN):
            return message  # settled meanwhile (e.g. a receipt); the attempt row keeps this answer
        # The sweep gave up on this call and the notification may have moved on to another channel:
        # retrying now could reach the customer twice.
        moved_on = message.status == Message.Status.UNKNOWN and message.fallbacks.exists()
        message.error_code, message.error = exc.code[:40], exc.text[:2000]
        message.lease_expires_at = None
        if exc.kind == ErrorKind.UNKNOWN:
            # The request may have reached the provider: resending could text the customer twice.
            message_set_status(
                message, Message.Status.UNKNOWN, "send task", "no answer after the request went out"
            )
            message.save(update_fields=["error_code", "error", "lease_expires_at", "status"])
        elif exc.kind == ErrorKind.RETRYABLE and message.attempts < MAX_ATTEMPTS and not moved_on:
            retry_at = now + timedelta(seconds=retry_delay(message.attempts, exc.retry_after))
            held_until = None
            if not (message.notification and message.notification.urgent):
                # A backoff must not carry a non-urgent message into the night.
                held_until = quiet_hours_end(messaging_settings_for(message.order.store), retry_at)
            retry_at = held_until or retry_at
            delay = (retry_at - now).total_seconds()
            message.next_attempt_at = retry_at
            message_set_status(
                message, Message.Status.QUEUED, "send task", f"retry in {delay:.0f} s ({exc.code or 'error'})"
            )
            message.save(
                update_fields=["error_code", "error", "lease_expires_at", "status", "next_attempt_at"]
            )
            if held_until is None:
                message_retry_on_commit(message.pk, countdown=delay)
            # else: the outbox sweep sends it when the quiet hours end, as for a new message.
        else:
            status = FINAL_STATUS_FOR.get(exc.kind, Message.Status.FAILED)
            if exc.kind == ErrorKind.OPTED_OUT:
                consent_record_provider_opt_out(message, exc.code)
            _finish(message, status, exc.code, exc.text, "send task")
            notification_try_next_channel_locked(
                message, f"{exc.kind.value} on {message.channel} ({exc.code or 'no code'})"
            )
    logger.info("message send failed message_id=%s kind=%s code=%s", message.pk, exc.kind.value, exc.code)
    return message


def retry_delay(attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter (half to all of base·2^(n-1), capped), so that messages failed
    together do not come back together; never sooner than the provider's Retry-After."""
    base = django_settings.LIVRA_OUTBOX_BACKOFF_BASE_SECONDS
    ceiling = min(BACKOFF_CAP_SECONDS, base * 2 ** (attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security
    return max(delay, retry_after or 0)


# --- status bookkeeping ---------------------------------------------------------------------
def message_set_status(message: Message, status: str, source: str, detail: str) -> None:
    _status_change(message, message.status, status, source, detail)
    message.status = status


def _status_change(message: Message, from_status: str, to_status: str, source: str, detail: str) -> None:
    row = _status_change_row(message, to_status, source, detail)
    row.from_status = from_status
    row.save()


def _status_change_row(message: Message, to_status: str, source: str, detail: str) -> MessageStatusChange:
    """The history row for ``message`` leaving its current status, not saved."""
    return MessageStatusChange(
        message=message,
        from_status=message.status,
        to_status=to_status,
        source=source,
        detail=detail[:300],
        at=timezone.now(),
    )


def _finish(message: Message, status: str, code: str, text: str, source: str) -> None:
    message.error_code, message.error = code[:40], text[:2000]
    message.failed_at = timezone.now()
    message.lease_expires_at = None
    message_set_status(message, status, source, f"{code} {text}".strip()[:300])
    message.save(update_fields=["error_code", "error", "failed_at", "lease_expires_at", "status", "template"])


def notification_try_next_channel_locked(message: Message, reason: str) -> Message | None:
    """Try the notification's next channel; mark it exhausted when none is left.

    The caller holds ``message``'s row lock inside its transaction (send task, receipt, sweep).
    """
    notification = message.notification
    if notification is None or notification.status != Notification.Status.PENDING:
        return None
    if message.fallbacks.exists():
        # This channel already handed over (silence); its late failure must not skip the channel
        # now being tried.
        return None
    tried = set(notification.messages.values_list("channel", flat=True))
    # The route was planned when the notification was made; consent given since then is not
    # assumed, and consent withdrawn since then (an opt-out error, a STOP) is honoured.
    customer = notification.customer
    policy = messaging_settings_for(notification.order.store).transactional_policy
    remaining = [
        channel
        for channel in notification.channels
        if channel not in tried
        and contact_point(customer, channel)
        and consent_allows(customer, channel, notification.purpose, policy=policy)
    ]
    if not remaining:
        notification.status = Notification.Status.EXHAUSTED
        notification.save(update_fields=["status"])
        notification_exhausted.send(sender=Notification, notification=notification)
        logger.info("notification exhausted every channel notification_id=%s", notification.pk)
        return None
    return message_create(notification, remaining[0], fallback_from=message, reason=reason)
