"""The store inbox: keep every delivery raw, once, and hand it to a task."""

import hashlib
import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.models import Store, StoreDelivery

logger = logging.getLogger(__name__)

# A row still "received" this long after it came in lost its task (a crash, the broker down at
# commit): the sweep queues it again. Fresh rows are left to their own task.
LOST_TASK_GRACE = timedelta(minutes=2)
SWEEP_BATCH = 500


def store_delivery_receive(
    store: Store, platform: str, *, topic: str, idempotency_key: str, headers: dict, body: bytes
) -> tuple[StoreDelivery, bool]:
    """Store a verified delivery and queue its processing after commit.

    Returns the delivery and whether it is new; a repeat of an idempotency key already stored
    returns the first delivery and queues nothing. A platform that names no key for its event
    is keyed by the body's hash, so an identical re-delivery is still a duplicate.
    """
    key = idempotency_key or f"sha256:{hashlib.sha256(body).hexdigest()}"
    try:
        with transaction.atomic():
            delivery = StoreDelivery.objects.create(
                store=store,
                platform=platform,
                topic=topic[:100],
                idempotency_key=key[:200],
                headers=headers,
                body=body,
            )
            store_delivery_process_on_commit(delivery.pk)
    except IntegrityError:
        existing = StoreDelivery.objects.get(store=store, platform=platform, idempotency_key=key[:200])
        logger.info("store delivery duplicate delivery_id=%s platform=%s", existing.pk, platform)
        return existing, False
    logger.info("store delivery received delivery_id=%s platform=%s topic=%s", delivery.pk, platform, topic)
    return delivery, True


def store_delivery_process_on_commit(delivery_id: int) -> None:
    from orders.tasks import store_delivery_process_task

    transaction.on_commit(lambda: store_delivery_process_task.delay(delivery_id))


def store_delivery_retry(delivery: StoreDelivery, *, actor) -> bool:
    """Queue a failed or flagged delivery again (admin's retry). False when it is not retryable."""
    with transaction.atomic():
        updated = StoreDelivery.objects.filter(
            pk=delivery.pk, status__in=(StoreDelivery.Status.FAILED, StoreDelivery.Status.FLAGGED)
        ).update(status=StoreDelivery.Status.RECEIVED)
        if updated:
            store_delivery_process_on_commit(delivery.pk)
    if updated:
        logger.info("store delivery retried delivery_id=%s actor_id=%s", delivery.pk, actor.pk)
    return bool(updated)


def store_delivery_sweep() -> int:
    """Queue again the deliveries whose processing task was lost (celery-beat, every minute)."""
    stuck = list(
        StoreDelivery.objects.filter(
            status=StoreDelivery.Status.RECEIVED, received_at__lt=timezone.now() - LOST_TASK_GRACE
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    with transaction.atomic():
        for delivery_id in stuck:
            store_delivery_process_on_commit(delivery_id)
    if stuck:
        logger.warning("store inbox sweep queued %s deliveries whose task was lost", len(stuck))
    return len(stuck)
