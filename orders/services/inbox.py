"""The store inbox: keep every delivery raw, once, and wake the drain that processes it.

Receiving is on the request path of every store webhook (Shopify allows 5 seconds and retries,
WooCommerce disables a webhook that keeps failing), so it is one INSERT and, usually, one
UPDATE-or-nothing on the drain's wakeup: processing happens in ``store_inbox_drain_task``. A
delivery whose processing failed waits for its retry time; the minute's sweep wakes the drain for it.
"""

import hashlib
import json
import logging
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from orders.models import Store, StoreDelivery
from orders.wakeups import wakeup_clear, wakeup_request

logger = logging.getLogger(__name__)

STORE_INBOX_DRAIN = "orders.store_inbox_drain"
DRAIN_BATCH = 50
# A row still "received" this long after it came in lost its drain (a crash, the broker down at
# commit): the sweep wakes the drain again. Fresh rows are left to their own wakeup.
LOST_TASK_GRACE = timedelta(minutes=2)

# One statement, no savepoint: a repeat of the key inserts nothing and returns no row.
_INSERT_SQL = (
    "INSERT INTO orders_storedelivery (store_id, platform, topic, idempotency_key, headers, body,"
    " received_at, status, notes, error, error_trace, attempts)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, '', '', 0)"
    " ON CONFLICT (store_id, platform, idempotency_key) DO NOTHING RETURNING id"
)


def store_delivery_receive(
    store: Store, platform: str, *, topic: str, idempotency_key: str, headers: dict, body: bytes
) -> tuple[int, bool]:
    """Store a verified delivery and wake the inbox drain after commit.

    Returns the delivery's id and whether it is new; a repeat of an idempotency key already
    stored returns the first delivery's id and wakes nothing. A platform that names no key for
    its event is keyed by the body's hash, so an identical re-delivery is still a duplicate.
    """
    key = (idempotency_key or f"sha256:{hashlib.sha256(body).hexdigest()}")[:200]
    adapt = connection.ops.adapt_datetimefield_value
    params = [
        store.pk,
        platform,
        topic[:100],
        key,
        json.dumps(headers),
        body,
        adapt(timezone.now()),
        StoreDelivery.Status.RECEIVED,
        "[]",
    ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, params)
        row = cursor.fetchone()
    if row is None:
        existing = StoreDelivery.objects.values_list("pk", flat=True).get(
            store=store, platform=platform, idempotency_key=key
        )
        logger.info("store delivery duplicate delivery_id=%s platform=%s", existing, platform)
        return existing, False
    store_inbox_wake_on_commit()
    logger.info("store delivery received delivery_id=%s platform=%s topic=%s", row[0], platform, topic)
    return row[0], True


def store_inbox_wake_on_commit(force: bool = False) -> None:
    transaction.on_commit(lambda: store_inbox_wake(force=force))


def store_inbox_wake(force: bool = False) -> bool:
    from orders.tasks import store_inbox_drain_task

    return wakeup_request(STORE_INBOX_DRAIN, store_inbox_drain_task, force=force)


def store_inbox_drain(batch_size: int = DRAIN_BATCH) -> int:
    """Process up to ``batch_size`` due deliveries (new ones, and failed ones whose retry time has
    come), oldest first, each in its own transaction; wake another drain when there may be more.
    Returns how many this drain processed."""
    from orders.services.ingest import store_deliveries_due, store_delivery_process

    wakeup_clear(STORE_INBOX_DRAIN)
    waiting = list(
        store_deliveries_due().order_by("received_at", "pk").values_list("pk", flat=True)[:batch_size]
    )
    # A delivery another drain holds is skipped (store_delivery_process locks with SKIP LOCKED).
    processed = sum(store_delivery_process(delivery_id) is not None for delivery_id in waiting)
    if len(waiting) == batch_size:
        # More may wait. Woken only now: a drain woken earlier would list these same rows.
        store_inbox_wake()
    return processed


RETRYABLE = (StoreDelivery.Status.FAILED, StoreDelivery.Status.RETRYING, StoreDelivery.Status.FLAGGED)


def store_delivery_retry(delivery: StoreDelivery, *, actor) -> bool:
    """Queue a failed, flagged or retrying delivery again now (admin's retry). False when it is not
    retryable. A failed delivery retried by a person that fails again goes back to "failed"."""
    with transaction.atomic():
        updated = StoreDelivery.objects.filter(pk=delivery.pk, status__in=RETRYABLE).update(
            status=StoreDelivery.Status.RECEIVED, next_attempt_at=None
        )
        if updated:
            store_inbox_wake_on_commit(force=True)
    if updated:
        logger.info("store delivery retried delivery_id=%s actor_id=%s", delivery.pk, actor.pk)
    return bool(updated)


def store_delivery_sweep() -> int:
    """Wake the drain for deliveries whose wakeup was lost and for failed ones whose retry time has
    come (celery-beat, every minute). Returns how many it woke the drain for."""
    now = timezone.now()
    stuck = Q(status=StoreDelivery.Status.RECEIVED, received_at__lt=now - LOST_TASK_GRACE)
    due = Q(status=StoreDelivery.Status.RETRYING, next_attempt_at__lte=now)
    counts = StoreDelivery.objects.filter(stuck | due).aggregate(
        stuck=Count("pk", filter=stuck), due=Count("pk", filter=due)
    )
    if counts["stuck"]:
        logger.warning("store inbox sweep: %s deliveries waited too long, waking the drain", counts["stuck"])
        store_inbox_wake(force=True)
    elif counts["due"]:
        logger.info("store inbox sweep: %s failed deliveries due again, waking the drain", counts["due"])
        store_inbox_wake()  # a drain already asked for (and not lost) retries them as well
    return counts["stuck"] + counts["due"]
