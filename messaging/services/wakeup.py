"""Waking the outbox drain: one pending drain task at a time, however many messages are queued.

Each committed message used to publish a send task of its own; a backlog of 2,000 messages then
cost 2,000 Celery tasks. Now a commit that queues messages asks for a drain (``outbox_drain_task``),
and the ask is coalesced through one row, ``OutboxWakeup``: while that row says a drain is
pending, no other is published. The drain deletes the row *before* it looks for due messages, so a
message committed after the drain looked finds the row gone and publishes the next drain; a
message committed before is seen by the drain. A row older than ``STALE_AFTER`` (its task was lost
with a broker outage) no longer holds anyone back, and the outbox sweep wakes the drain anyway.
"""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from messaging.models import OutboxWakeup

STALE_AFTER = timedelta(seconds=10)

# One statement on PostgreSQL and SQLite alike; RETURNING gives a row only when this call inserted
# it or took over a stale one.
_MARK_PENDING_SQL = (
    "INSERT INTO messaging_outboxwakeup (id, requested_at) VALUES (%s, %s) "
    "ON CONFLICT (id) DO UPDATE SET requested_at = excluded.requested_at "
    "WHERE messaging_outboxwakeup.requested_at < %s RETURNING id"
)


def outbox_wake_on_commit() -> None:
    """Ask for a drain of the outbox once this transaction commits (at once outside one)."""
    transaction.on_commit(outbox_wake)


def outbox_wake(force: bool = False) -> bool:
    """Publish a drain task unless one is pending already (``force``: publish anyway).

    Returns whether a task was published.
    """
    from messaging.tasks import outbox_drain_task

    if not (_mark_wake_pending() or force):
        return False
    outbox_drain_task.delay()
    return True


def outbox_wake_clear() -> None:
    """The drain starts: later commits must publish a drain of their own."""
    OutboxWakeup.objects.filter(pk=OutboxWakeup.SINGLETON).delete()


def _mark_wake_pending() -> bool:
    """Note that a drain is pending; True when none was (or the one noted has gone stale)."""
    now = timezone.now()
    ops = connection.ops
    params = [
        OutboxWakeup.SINGLETON,
        ops.adapt_datetimefield_value(now),
        ops.adapt_datetimefield_value(now - STALE_AFTER),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_MARK_PENDING_SQL, params)
        return cursor.fetchone() is not None
