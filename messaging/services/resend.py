"""Resending a message: an agent's explicit decision, recorded on the order's timeline.

A resend is a new outbox row, not a retry: the original keeps its status and history, and the
new message points back to it (``fallback_from``). It belongs to no notification, because a
notification is sent at most once per channel; the agent chose to send again.
"""

import logging

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from messaging.models import Message, MessageStatusChange, Purpose
from messaging.services.consent import consent_allows
from messaging.services.routing import channel_provider_for, contact_point, messaging_settings_for
from messaging.services.wakeup import outbox_wake_on_commit
from orders.models import OrderEvent

logger = logging.getLogger(__name__)

RESEND_PERMISSION = "messaging.resend_message"
# Still on its way: resending now could reach the customer twice.
NOT_RESENDABLE = frozenset({Message.Status.QUEUED, Message.Status.SENDING})


class ResendRefused(Exception):
    """The message cannot be resent as asked; the text says why, for the agent."""


def resend_problem(message: Message) -> str:
    """Why ``message`` cannot be resent now, or "" when it can (read-only; the service re-checks)."""
    if message.status in NOT_RESENDABLE:
        return gettext("message %(id)s is still being sent (%(status)s)") % {
            "id": message.pk,
            "status": message.get_status_display().lower(),
        }
    return ""


def message_resend(message: Message, *, actor, reason: str) -> Message:
    """Queue a new copy of ``message`` on the same channel; its send starts after commit."""
    if actor is None or not actor.has_perm(RESEND_PERMISSION):
        raise PermissionDenied("resending a message needs the messaging.resend_message permission")
    reason = (reason or "").strip()
    if not reason:
        raise ResendRefused(gettext("A reason is required to resend a message."))

    with transaction.atomic():
        # The original's row lock serializes resends of it: numbering and the double-click check.
        original = (
            Message.objects.select_for_update(of=("self",))
            .select_related("notification", "order__store", "customer")
            .get(pk=message.pk)
        )
        problem = resend_problem(original)
        if problem:
            raise ResendRefused(gettext("Cannot resend: %(problem)s.") % {"problem": problem})
        earlier = Message.objects.filter(
            fallback_from=original, idempotency_key__startswith=f"resend:{original.pk}:"
        )
        if earlier.filter(status__in=NOT_RESENDABLE).exists():
            raise ResendRefused(
                gettext("Message %(id)s was just resent; that copy is still being sent.")
                % {"id": original.pk}
            )

        order, customer, channel = original.order, original.customer, original.channel
        purpose = original.notification.purpose if original.notification else Purpose.TRANSACTIONAL
        policy = messaging_settings_for(order.store).transactional_policy
        if not consent_allows(customer, channel, purpose, policy=policy):
            raise ResendRefused(
                gettext("Cannot resend: the customer has not consented to %(channel)s messages.")
                % {"channel": channel}
            )
        # Where the customer can be reached now: an agent often resends after correcting it.
        recipient = contact_point(customer, channel)
        if not recipient:
            raise ResendRefused(
                gettext("Cannot resend: the customer has no valid contact for %(channel)s.")
                % {"channel": channel}
            )

        provider = channel_provider_for(order.store, channel)
        if provider is None:
            raise ResendRefused(
                gettext("Cannot resend: the store has no provider configured for %(channel)s.")
                % {"channel": channel}
            )

        number = earlier.count() + 1
        now = timezone.now()
        resent = Message.objects.create(
            notification=None,
            order=order,
            customer=customer,
            event=original.event,
            channel=channel,
            # The provider the store sends this channel with now, as the send task configures it.
            provider=provider.provider,
            recipient=recipient,
            idempotency_key=f"resend:{original.pk}:{number}",
            next_attempt_at=now,  # the agent asked for it now: quiet hours do not hold it
            fallback_from=original,
            fallback_reason=f"resent by agent: {reason}"[:200],
        )
        MessageStatusChange.objects.create(
            message=resent,
            from_status="",
            to_status=Message.Status.QUEUED,
            source="agent",
            detail=f"resend of message {original.pk} by user {actor.pk}",
            at=now,
        )
        OrderEvent.objects.create(
            order=order,
            type="message_resent",
            source=OrderEvent.Source.AGENT,
            actor=actor,
            reason=reason,
            payload={"message_id": resent.pk, "resent_message_id": original.pk, "channel": channel},
            idempotency_key=resent.idempotency_key,
        )
        outbox_wake_on_commit()
    logger.info("message resent message_id=%s original_id=%s actor_id=%s", resent.pk, original.pk, actor.pk)
    return resent
