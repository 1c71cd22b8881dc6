"""The confirmation queue's writes besides queueing (a rule's action): an agent marks an entry done,
and an entry closes by itself once the order has settled what it was queued for.

An order waits in the queue for an answer (no reply, an unclear one, a cancel after confirming, no
carrier news). Whatever then moves it out of awaiting confirmation — the customer's reply, an
agent, the store, a rule — answers the confirmation; an order that ends (cancelled, delivered,
returned, refunded) answers everything. Either closes its open entry in the status change's own
transaction, so the queue never lists an order that no longer needs a call.
"""

from django.db import transaction
from django.utils import timezone

from automations.models import QueueEntry
from orders.models import OrderEvent
from orders.transitions import FINAL_STATUSES, OrderStatus

CLOSED_BY_AN_AGENT = "marked done by an agent"
CLOSE_FIELDS = ["state", "closed_at", "close_reason", "closed_by"]
_WHO = {
    OrderEvent.Source.CUSTOMER: "the customer",
    OrderEvent.Source.STORE: "the store",
    OrderEvent.Source.CARRIER: "the carrier",
    OrderEvent.Source.SYSTEM: "Livra",
}


def queue_entry_close(entry: QueueEntry, *, actor) -> bool:
    """Mark ``entry`` done (and say so on the order's timeline); False if it was already closed."""
    with transaction.atomic():
        locked = QueueEntry.objects.select_for_update().get(pk=entry.pk)
        if locked.state != QueueEntry.State.OPEN:
            entry.state, entry.closed_at = locked.state, locked.closed_at
            return False
        _close(locked, reason=CLOSED_BY_AN_AGENT, user=actor)
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


def queue_entry_close_settled(order, event: OrderEvent) -> QueueEntry | None:
    """``order`` just entered its status through ``event`` (inside the change's transaction): close
    its open entry if that settles it; the entry closed, or None."""
    return queue_entries_close_settled([(order, event)]).get(order.pk)


def queue_entries_close_settled(entries: list[tuple]) -> dict[int, QueueEntry]:
    """``queue_entry_close_settled`` for a batch of status entries ((order, event) pairs): one read
    when none settles anything (a carrier's batch of news mostly), a few statements otherwise.
    The entries closed, by order id."""
    settling = {
        order.pk: event
        for order, event in entries
        if event.from_status == OrderStatus.AWAITING_CONFIRMATION or order.status in FINAL_STATUSES
    }
    if not settling:
        return {}
    open_entries = QueueEntry.objects.select_for_update().filter(
        order_id__in=list(settling), state=QueueEntry.State.OPEN
    )
    closed, facts = {}, []
    for entry in open_entries:
        if entry.order_id in closed:
            continue  # one open entry per order; should there be two, the first is closed
        event = settling[entry.order_id]
        reason = f"order {event.type} by {_who(event)}"  # e.g. "order confirmed by the customer"
        _close(entry, reason=reason, user=event.actor, save=False)
        closed[entry.order_id] = entry
        facts.append(
            OrderEvent(
                order_id=entry.order_id,
                type="queue_entry_closed",
                source=OrderEvent.Source.SYSTEM,
                reason=reason,
                payload={
                    "queue_entry_id": entry.pk,
                    "priority": entry.priority,
                    "queue_reason": entry.reason,
                    "closed_by_event_id": event.pk,
                },
            )
        )
    QueueEntry.objects.bulk_update(closed.values(), CLOSE_FIELDS)
    OrderEvent.objects.bulk_create(facts)
    return closed


def _close(entry: QueueEntry, *, reason: str, user, save: bool = True) -> None:
    entry.state, entry.closed_at = QueueEntry.State.DONE, timezone.now()
    entry.close_reason, entry.closed_by = reason[:300], user
    if save:
        entry.save(update_fields=CLOSE_FIELDS)


def _who(event: OrderEvent) -> str:
    if event.source == OrderEvent.Source.AGENT and event.actor is not None:
        return f"agent {event.actor.get_username()}"
    if event.source == OrderEvent.Source.AUTOMATION:
        name = (event.payload or {}).get("rule_name")
        return f"rule {name!r}" if name else "a rule"
    return _WHO.get(event.source, event.source)
