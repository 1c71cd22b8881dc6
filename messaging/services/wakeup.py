"""Waking the outbox drain (``outbox_drain_task``): one pending drain at a time, however many
messages are queued (the mechanism: ``orders.wakeups``)."""

from django.db import transaction

from orders.wakeups import wakeup_clear, wakeup_request

OUTBOX_DRAIN = "messaging.outbox_drain"


def outbox_wake_on_commit() -> None:
    """Ask for a drain of the outbox once this transaction commits (at once outside one)."""
    transaction.on_commit(outbox_wake)


def outbox_wake(force: bool = False) -> bool:
    """Publish a drain unless one is pending (``force``: anyway); whether it was published."""
    from messaging.tasks import outbox_drain_task

    return wakeup_request(OUTBOX_DRAIN, outbox_drain_task, force=force)


def outbox_wake_clear() -> None:
    wakeup_clear(OUTBOX_DRAIN)
