"""Actions of the messaging app: enqueue outbox rows and send them."""

import logging

from django.db import transaction
from django.utils import timezone

from messaging.models import Message
from messaging.providers import get_provider

logger = logging.getLogger(__name__)

# Which status changes the customer hears about. Channel routing, consent and templates
# replace this with per-store rules in the messaging issue; until then every customer-facing
# change goes to the sandbox provider.
CUSTOMER_FACING_EVENTS = {
    "request_confirmation": "confirmation_requested",
    "accept": "order_received",
    "confirm": "order_confirmed",
    "cancel": "order_cancelled",
    "ship": "order_shipped",
    "mark_out_for_delivery": "out_for_delivery",
    "fail_delivery": "delivery_failed",
    "reschedule_delivery": "delivery_rescheduled",
    "deliver": "order_delivered",
    "refund": "order_refunded",
}
DEFAULT_CHANNEL = "sandbox"
DEFAULT_PROVIDER = "sandbox"


def message_enqueue_for_status_change(order, *, transition_name: str, target: str) -> Message | None:
    """Write the outbox row for this status change and kick the send once the change commits.

    Must run inside the transaction that changes the status (it is called from the FSM
    signal); the row lock held there makes ``status_version`` unique for the order.
    """
    event = CUSTOMER_FACING_EVENTS.get(transition_name)
    if event is None:
        return None
    message = Message.objects.create(
        order=order,
        customer_id=order.customer_id,
        event=event,
        channel=DEFAULT_CHANNEL,
        provider=DEFAULT_PROVIDER,
        body=f"Order {order.number}: {event.replace('_', ' ')}.",
        idempotency_key=f"order:{order.pk}:v{order.status_version}:{DEFAULT_CHANNEL}",
    )
    message_send_on_commit(message.pk)
    return message


def message_send_on_commit(message_id: int) -> None:
    from messaging.tasks import message_send_task

    transaction.on_commit(lambda: message_send_task.delay(message_id))


def message_send(message_id: int) -> Message:
    """Send one queued message: claim it, call the provider outside any transaction, record."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None or message.status != Message.Status.QUEUED:
            # Already claimed or done by another run of this task: nothing to do.
            return message
        message.status = Message.Status.SENDING
        message.attempts += 1
        message.save(update_fields=["status", "attempts"])

    provider = get_provider(message.provider)
    try:
        result = provider.send(message)
    except Exception as exc:
        message.status = Message.Status.FAILED
        message.error = f"{type(exc).__name__}: {exc}"
        message.save(update_fields=["status", "error"])
        logger.warning("message send failed message_id=%s provider=%s", message.pk, message.provider)
        raise
    message.status = Message.Status.SENT
    message.provider_message_id = result.provider_message_id
    message.sent_at = timezone.now()
    message.save(update_fields=["status", "provider_message_id", "sent_at"])
    logger.info("message sent message_id=%s provider=%s", message.pk, message.provider)
    return message
