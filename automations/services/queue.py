"""The confirmation queue's one agent write: closing an entry once the order has been dealt with."""

from django.db import transaction
from django.utils import timezone

from automations.models import QueueEntry
from orders.models import OrderEvent


def queue_entry_close(entry: QueueEntry, *, actor) -> bool:
    """Mark ``entry`` done (and say so on the order's timeline); False if it was already closed."""
    with transaction.atomic():
        locked = QueueEntry.objects.select_for_update().get(pk=entry.pk)
        if locked.state != QueueEntry.State.OPEN:
            entry.state, entry.closed_at = locked.state, locked.closed_at
            return False
        locked.state, locked.closed_at = QueueEntry.State.DONE, timezone.now()
        locked.save(update_fields=["state", "closed_at"])
        OrderEvent.objects.create(
            order_id=locked.order_id,
            type="queue_entry_closed",
            source=OrderEvent.Source.AGENT,
            actor=actor,
            reason=locked.reason,
            payload={"queue_entry_id": locked.pk, "priority": locked.priority},
        )
    entry.state, entry.closed_at = locked.state, locked.closed_at
    return True
