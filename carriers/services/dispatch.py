"""Dispatch: parcels created at one carrier account for a selection of orders, in the background.

``dispatch_batch_create`` records what was asked (and which orders cannot go, with why) in one
short transaction; its caller publishes the run after commit. ``dispatch_batch_run`` works
through the orders one by one, each carrier call outside any transaction, and saves the counts
after each so a page can show the progress. Running a batch again (its worker died half-way, or
the task was delivered twice) creates nothing twice: orders with a final result are passed over,
and ``shipment_create`` answers an order's existing parcel (or reconciles an unknown create)
instead of sending it again. When the store ships at creation, each created parcel moves its
order to shipped through ``order_transition`` (once: keyed by the shipment); at pick-up, the
carrier's picked-up event does (tracking).
"""

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from carriers.adapters import CarrierError
from carriers.models import CarrierAccount, DispatchBatch, Shipment
from carriers.services.accounts import carrier_label
from carriers.services.cities import carrier_city_match
from carriers.services.parcels import shipment_create, shipments_label_pdf
from orders.errors import OrderTransitionError
from orders.models import Order, OrderEvent, Store
from orders.services import order_transition
from orders.transitions import OrderStatus

logger = logging.getLogger(__name__)

READY_STATUSES = (OrderStatus.CONFIRMED, OrderStatus.PROCESSING)
CREATED, FAILED, SKIPPED, UNKNOWN = "created", "failed", "skipped", "unknown"
# Outcomes a run again leaves alone; an unknown create is looked up again.
FINAL_OUTCOMES = {CREATED, FAILED, SKIPPED}
# Why an order was not sent (codes: the page says them in the reader's language).
SKIP_STATUS, SKIP_STORE, SKIP_HAS_PARCEL = "status", "store", "has_parcel"
# A batch still queued this long after its action committed lost its task: the sweep sends it again.
LOST_PUBLISH_GRACE = timedelta(minutes=2)
LIVE_CREATES = (Shipment.CreateStatus.CREATED, Shipment.CreateStatus.UNKNOWN)


def dispatch_batch_create(account: CarrierAccount, orders, actor=None) -> DispatchBatch:
    """A queued batch for ``orders`` at ``account``; orders that cannot go are skipped, with why.

    The caller publishes ``carriers.dispatch_batch_run`` after commit.
    """
    orders = list(orders)
    with transaction.atomic():
        batch = DispatchBatch.objects.create(account=account, created_by=actor, total=len(orders))
        batch.orders.set(orders)
        for order in orders:
            reason = _skip_reason(account, order)
            if reason:
                batch.results[str(order.pk)] = {
                    "outcome": SKIPPED,
                    "number": order.number,
                    "reason": reason,
                    "status": order.status,
                }
        batch.skipped_count = len(batch.results)
        batch.save(update_fields=["results", "skipped_count"])
    logger.info(
        "dispatch batch created batch_id=%s account_id=%s orders=%s skipped=%s",
        batch.pk,
        account.pk,
        batch.total,
        batch.skipped_count,
    )
    return batch


def dispatch_batch_run(batch_id: int) -> DispatchBatch:
    """Create the batch's parcels (see the module): safe to run again, never sends one twice."""
    batch = _batch_start(batch_id)
    if batch.status == DispatchBatch.Status.DONE:
        return batch
    orders = Order.objects.filter(pk__in=batch.orders.values("pk")).select_related("store", "customer")
    for order in orders.order_by("pk"):
        key = str(order.pk)
        if batch.results.get(key, {}).get("outcome") in FINAL_OUTCOMES:
            continue
        batch.results[key] = _order_dispatch(batch, order)
        _batch_count(batch)
        batch.save(update_fields=["results", "created_count", "failed_count", "skipped_count"])
    _batch_labels(batch)
    batch.status = DispatchBatch.Status.DONE
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "finished_at", "label_pdf", "label_error"])
    logger.info(
        "dispatch batch done batch_id=%s created=%s failed=%s skipped=%s",
        batch.pk,
        batch.created_count,
        batch.failed_count,
        batch.skipped_count,
    )
    return batch


def dispatch_batches_sweep(now: datetime | None = None) -> int:
    """Publish again the batches still queued a while after they were made: their task was lost
    (the broker down when the action committed). Runs with celery-beat, every minute; a batch
    whose worker died mid-run is redelivered by the broker (late acknowledgement) instead.
    Returns how many it published."""
    from carriers.tasks import dispatch_batch_run_task
    from config.celery import task_publish

    cutoff = (now or timezone.now()) - LOST_PUBLISH_GRACE
    lost = list(
        DispatchBatch.objects.filter(status=DispatchBatch.Status.QUEUED, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for batch_id in lost:
        logger.warning("dispatch batch still queued, published again batch_id=%s", batch_id)
        task_publish(dispatch_batch_run_task, batch_id)
    return len(lost)


def dispatch_batch_shipments(batch: DispatchBatch) -> list[Shipment]:
    """The parcels the batch created (or found already created), in the order of its orders."""
    ids = [
        result["shipment"]
        for _, result in sorted(batch.results.items(), key=lambda item: int(item[0]))
        if result.get("outcome") == CREATED
    ]
    found = Shipment.objects.select_related("account").in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]


def _batch_start(batch_id: int) -> DispatchBatch:
    with transaction.atomic():
        batch = DispatchBatch.objects.select_for_update().select_related("account").get(pk=batch_id)
        if batch.status == DispatchBatch.Status.QUEUED:
            batch.status = DispatchBatch.Status.RUNNING
            batch.started_at = timezone.now()
            batch.save(update_fields=["status", "started_at"])
    return batch


def _skip_reason(account: CarrierAccount, order: Order) -> str:
    if order.store_id != account.store_id:
        return SKIP_STORE
    if order.status not in READY_STATUSES:
        return SKIP_STATUS
    has_parcel = (
        Shipment.objects.filter(order=order, create_status__in=LIVE_CREATES).exclude(account=account).exists()
    )
    return SKIP_HAS_PARCEL if has_parcel else ""


def _order_dispatch(batch: DispatchBatch, order: Order) -> dict:
    """One order of the batch: its parcel at the carrier (outside any transaction), then shipped."""
    account = batch.account
    base = {"number": order.number}
    # A parcel this batch already made (a run that died before saving the result) is answered
    # again whatever the order's status now; otherwise the order must still be ready to go.
    made_here = Shipment.objects.filter(order=order, batch=batch, create_status__in=LIVE_CREATES).exists()
    if not made_here and (reason := _skip_reason(account, order)):
        return {**base, "outcome": SKIPPED, "reason": reason, "status": order.status}

    match = carrier_city_match(account, order.shipping_city)
    city_id = match.city.carrier_city_id if match.city is not None else ""
    shipment = shipment_create(order, account, city=city_id, batch=batch)
    base.update(shipment=shipment.pk, city=match.how)
    if shipment.create_status == Shipment.CreateStatus.UNKNOWN:
        return {**base, "outcome": UNKNOWN, "error": shipment.create_error}
    if shipment.create_status != Shipment.CreateStatus.CREATED:
        return {**base, "outcome": FAILED, "error": shipment.create_error}
    result = {**base, "outcome": CREATED, "tracking_number": shipment.tracking_number}
    if order.store.ship_at == Store.ShipAt.CREATION:
        result.update(_order_ship(batch, order, shipment))
    return result


def _order_ship(batch: DispatchBatch, order: Order, shipment: Shipment) -> dict:
    order.refresh_from_db(fields=["status"])
    if order.status not in READY_STATUSES:
        return {}  # moved on already (shipped by an earlier run, or by the carrier's news)
    payload = {
        "carrier": carrier_label(shipment.carrier),
        "tracking_number": shipment.tracking_number,
        "tracking_url": shipment.tracking_url,
        "shipment": shipment.pk,
        "dispatch_batch": batch.pk,
    }
    try:
        order_transition(
            order.pk,
            "ship",
            source=OrderEvent.Source.CARRIER,
            payload={key: value for key, value in payload.items() if value},
            idempotency_key=f"dispatch:{shipment.pk}:ship",
        )
    except OrderTransitionError as err:
        return {"note": str(err)}
    return {"shipped": True}


def _batch_count(batch: DispatchBatch) -> None:
    outcomes = [result.get("outcome") for result in batch.results.values()]
    batch.created_count = outcomes.count(CREATED)
    batch.failed_count = outcomes.count(FAILED) + outcomes.count(UNKNOWN)
    batch.skipped_count = outcomes.count(SKIPPED)


def dispatch_batch_labels(batch: DispatchBatch) -> bytes | None:
    """The batch's merged label PDF, asked of the carrier again when the run could not get it."""
    if batch.label_pdf is None:
        _batch_labels(batch)
        batch.save(update_fields=["label_pdf", "label_error"])
    return bytes(batch.label_pdf) if batch.label_pdf is not None else None


def _batch_labels(batch: DispatchBatch) -> None:
    """The created parcels' labels in one PDF (a call to the carrier: outside any transaction)."""
    shipments = dispatch_batch_shipments(batch)
    batch.label_pdf, batch.label_error = None, ""
    if not shipments:
        return
    try:
        batch.label_pdf = shipments_label_pdf(shipments)
    except CarrierError as error:
        batch.label_error = str(error)[:300]
    except Exception as exc:  # the parcels exist: a label that failed is asked for again later
        batch.label_error = type(exc).__name__
