"""Waking a drain task: one pending task per drain, however many rows are waiting for it.

A commit that leaves work for a drain (the messaging outbox, the store inbox) asks for one. The
ask is coalesced through one ``Wakeup`` row per drain: while it says a drain is pending, nobody
publishes another. The drain deletes the row *before* it looks for work, so a row committed after
the drain looked finds the wakeup gone and publishes the next drain; a row committed before is
seen by the drain. A wakeup older than ``STALE_AFTER`` (its task was lost with a broker outage)
no longer holds anyone back, and each drain's sweep wakes it anyway.

A publish the broker refuses (``config.celery.task_publish``: logged, never raised into the
request that committed) leaves its wakeup in place: for ``STALE_AFTER`` later commits do not try
again, so a broker that is away costs one publish attempt per drain every few seconds rather
than one per request, and the next commit after that publishes afresh.

Where: orders, because every app may depend on orders (messaging drains the outbox with it).
"""

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from config.celery import task_publish
from orders.models import Wakeup

STALE_AFTER = timedelta(seconds=10)

_PENDING_SQL = "SELECT 1 FROM orders_wakeup WHERE name = %s AND requested_at >= %s"
# One statement on PostgreSQL and SQLite alike; RETURNING gives a row only when this call inserted
# the wakeup or took over a stale one.
_REQUEST_SQL = (
    "INSERT INTO orders_wakeup (name, requested_at) VALUES (%s, %s) "
    "ON CONFLICT (name) DO UPDATE SET requested_at = excluded.requested_at "
    "WHERE orders_wakeup.requested_at < %s RETURNING name"
)


def wakeup_request(name: str, task, *, force: bool = False) -> bool:
    """Publish ``task`` (a Celery task taking no arguments) unless a wakeup of ``name`` is pending
    (``force``: publish anyway). Returns whether the broker took it. Call after commit."""
    now = timezone.now()
    stale = connection.ops.adapt_datetimefield_value(now - STALE_AFTER)
    with connection.cursor() as cursor:
        # Under a burst the wakeup is nearly always pending: a plain read says so without taking
        # the row's lock, which the upsert takes even when it changes nothing (and every request
        # would queue on it).
        cursor.execute(_PENDING_SQL, [name, stale])
        pending = cursor.fetchone() is not None
        requested = False
        if not pending:
            cursor.execute(_REQUEST_SQL, [name, connection.ops.adapt_datetimefield_value(now), stale])
            requested = cursor.fetchone() is not None
    if not (requested or force):
        return False
    return task_publish(task)


def wakeup_clear(name: str) -> None:
    """The drain starts: later commits must publish a drain of their own."""
    Wakeup.objects.filter(name=name).delete()
