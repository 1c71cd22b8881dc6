"""Carrier tracking reports → append-only events → the order follows the parcel.

Every report is kept (``TrackingEvent``), deduplicated per carrier by its key, normalised through
the editable status table, and applied to the order through ``order_transition`` with the
event's key as idempotency key. Unknown raw codes are kept unmapped and wait for a mapping.
"""

import hashlib
import logging
from collections import deque
from dataclasses import dataclass
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from carriers.adapters import TrackingUpdate, fold
from carriers.models import CarrierAccount, Shipment, TrackingEvent, TrackingReason, TrackingState
from carriers.services.mappings import status_mapping_for, status_mappings_for
from carriers.signals import parcel_news
from orders.errors import IllegalTransition
from orders.insert_once import insert_once
from orders.models import Order, OrderEvent
from orders.services import order_transition
from orders.transitions import TRANSITIONS, OrderStatus

logger = logging.getLogger(__name__)

S, T = OrderStatus, TrackingState

# Normalised state → the order status it means (reference §1, "Onto Livra's order statuses").
# States not here (info_received, cancelled, lost) move no order.
ORDER_STATUS_FOR_STATE = {
    T.PICKED_UP: S.SHIPPED,
    T.IN_TRANSIT: S.IN_TRANSIT,
    T.ON_HOLD: S.IN_TRANSIT,
    T.OUT_FOR_DELIVERY: S.OUT_FOR_DELIVERY,
    T.AVAILABLE_FOR_PICKUP: S.OUT_FOR_DELIVERY,
    T.DELIVERY_FAILED: S.DELIVERY_FAILED,
    T.DELIVERED: S.DELIVERED,
    T.RETURNING: S.RTO_INITIATED,
    T.RETURNED: S.RETURNED,
}
# How far along the delivery an order is: a carrier event never moves it to a lower rank, except
# a new attempt after a failure (delivery_failed → out_for_delivery).
RANK = {
    S.CONFIRMED: 1,
    S.PROCESSING: 2,
    S.SHIPPED: 3,
    S.IN_TRANSIT: 4,
    S.OUT_FOR_DELIVERY: 5,
    S.DELIVERY_FAILED: 6,
    S.RTO_INITIATED: 7,
    S.DELIVERED: 8,
    S.RETURNED: 9,
}
REATTEMPT = (S.DELIVERY_FAILED, S.OUT_FOR_DELIVERY)
# The transitions a carrier's news may walk an order through (never confirm, cancel or refund).
CARRIER_TRANSITIONS = {
    "start_processing",
    "ship",
    "mark_in_transit",
    "mark_out_for_delivery",
    "fail_delivery",
    "reschedule_delivery",
    "deliver",
    "initiate_return",
    "mark_returned",
}


# Why an event did not move its order: stored in English, shown translated (orders.stored_words).
NOTE_NO_MOVE = gettext_noop("This state does not move the order.")
NOTE_ALREADY_THERE = gettext_noop("The order is already there.")
NOTE_LATE = gettext_noop("Older than the shipment's last event.")
NOTE_NOT_IN_DELIVERY = gettext_noop("Carrier news does not move an order from its status.")
NOTE_FURTHER_ALONG = gettext_noop("The order is further along.")
NOTE_NO_PATH = gettext_noop("No transition leads there from the order's status.")


def _reason_words(reason: str) -> str:
    """The reason as the timeline stores it: its English label, translated where it is shown."""
    if not reason:
        return ""
    with translation.override("en"):
        return str(TrackingReason(reason).label)


@dataclass(frozen=True)
class RecordResult:
    recorded: list  # new TrackingEvents
    duplicates: int
    unknown_parcels: list  # tracking numbers no shipment of the account has


def dedup_key(update: TrackingUpdate) -> str:
    """The carrier's event id where it has one, else a hash of tracking number + raw code + carrier
    time (a report without a time: + its text, so that a repeat of it is still recognised)."""
    if update.event_id and len(update.event_id) <= 180:
        return f"id:{update.event_id}"
    when = update.occurred_at.isoformat() if update.occurred_at else f"no time|{update.raw_text}"
    material = update.event_id or f"{update.tracking_number}|{update.raw_code}|{when}"
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()


def tracking_updates_record(
    account: CarrierAccount, updates: list[TrackingUpdate], source: str
) -> RecordResult:
    """Keep each report once, normalise it, and move the order for the mapped ones.

    One short transaction per new report; nothing here calls the carrier. Reports already kept
    (a poll repeats the whole history) cost one query for the batch, not one per report.
    """
    now = timezone.now()
    shipments = {
        shipment.tracking_number: shipment
        for shipment in Shipment.objects.filter(
            account=account, tracking_number__in={update.tracking_number for update in updates}
        )
    }
    keys = [dedup_key(update) for update in updates]
    known = set(
        TrackingEvent.objects.filter(carrier=account.carrier, dedup_key__in=set(keys)).values_list(
            "dedup_key", flat=True
        )
    )
    mappings = status_mappings_for(account.carrier, account, {update.raw_code for update in updates})
    recorded, duplicates, unknown = [], 0, []
    for update, key in zip(updates, keys, strict=True):
        shipment = shipments.get(update.tracking_number)
        if shipment is None:
            unknown.append(update.tracking_number)
            logger.warning(
                "carrier report for an unknown parcel carrier=%s account=%s", account.carrier, account.pk
            )
            continue
        if key in known:
            duplicates += 1
            continue
        known.add(key)  # the same report twice in one batch
        occurred_at = update.occurred_at or now
        mapping = mappings.get(fold(update.raw_code))
        event = TrackingEvent(
            carrier=account.carrier,
            dedup_key=key,
            shipment=shipment,
            raw_code=update.raw_code[:200],
            raw_code_folded=fold(update.raw_code)[:200],
            raw_text=update.raw_text,
            occurred_at=occurred_at,
            source=source,
            location=update.location[:200],
            state=mapping.state if mapping else "",
            reason=mapping.reason if mapping else "",
            mapped=mapping is not None,
            raw=update.raw,
        )
        # The event row and its effect on the order commit together: a crash leaves neither.
        with transaction.atomic():
            created = insert_once(event, ("carrier", "dedup_key"))
            if created and event.mapped:
                event = _event_apply(event)
        if not created:
            duplicates += 1  # another process kept it between our look and our insert
            continue
        if not event.mapped:
            # After the commit: the shipment's row is locked after the order's everywhere else.
            Shipment.objects.filter(pk=shipment.pk).update(reported_status=update.raw_code[:100])
            logger.info("unmapped carrier status carrier=%s raw=%s", account.carrier, event.raw_code_folded)
        recorded.append(event)
    if source == TrackingEvent.Source.WEBHOOK and shipments:
        Shipment.objects.filter(pk__in=[shipment.pk for shipment in shipments.values()]).update(
            last_webhook_at=now
        )
    if recorded:
        # News restarts the "no carrier news" waits, applied or not (automations listens).
        parcel_news.send(sender=Shipment, order_ids={event.shipment.order_id for event in recorded})
    return RecordResult(recorded, duplicates, unknown)


def carrier_path(current: str, target: str, payment_method: str) -> list[str] | None:
    """The carrier transitions that take an order from ``current`` to ``target``, or None."""
    paths: dict[str, list[str]] = {current: []}
    queue = deque([current])
    while queue:
        status = queue.popleft()
        if status == target:
            return paths[status]
        probe = SimpleNamespace(status=status, payment_method=payment_method)
        for spec in TRANSITIONS:
            if spec.name not in CARRIER_TRANSITIONS or status not in spec.sources:
                continue
            if spec.target not in paths and all(cond(probe) for cond in spec.conditions):
                paths[spec.target] = [*paths[status], spec.name]
                queue.append(spec.target)
    return None


def tracking_event_apply(event_id: int, *, remap: bool = False) -> TrackingEvent:
    """Apply one event to its shipment and its order (``remap``: read the status table again first).

    Runs in one transaction holding the order's and the shipment's row locks, so two events of one
    parcel are applied one after the other.
    """
    with transaction.atomic():
        event = TrackingEvent.objects.select_related("shipment").get(pk=event_id)
        return _event_apply(event, remap=remap)


def _event_apply(event: TrackingEvent, *, remap: bool = False) -> TrackingEvent:
    """``tracking_event_apply`` of an event already read (or just written by this transaction)."""
    # No savepoint of its own: its callers' transaction (tracking_updates_record's per report,
    # tracking_event_apply's) is undone whole on an error, and nothing between them catches.
    with transaction.atomic(savepoint=False):
        order = Order.objects.select_for_update().get(pk=event.shipment.order_id)
        shipment = Shipment.objects.select_for_update().get(pk=event.shipment_id)
        if remap and not event.mapped:
            mapping = status_mapping_for(event.carrier, shipment.account, event.raw_code)
            if mapping is None:
                return event
            event.state, event.reason, event.mapped = mapping.state, mapping.reason, True
        if not event.mapped or event.applied:
            return event

        latest = shipment.last_event_at
        is_late = latest is not None and event.occurred_at < latest
        _shipment_follow(shipment, event, is_late)
        event.applied, event.apply_note, order_event = _order_follow(order, event, is_late)
        event.order_event = order_event
        event.save(update_fields=["state", "reason", "mapped", "applied", "apply_note", "order_event"])
    return event


def _shipment_follow(shipment: Shipment, event: TrackingEvent, is_late: bool) -> None:
    fields = ["updated_at"]
    if event.state == T.DELIVERY_FAILED:
        shipment.attempts += 1
        fields.append("attempts")
    if event.state == T.DELIVERED and shipment.cod_collected_at is None:
        amount = shipment.cod_amount if shipment.cod_amount is not None else shipment.order.cod_amount
        shipment.cod_collected_amount, shipment.cod_collected_at = amount, event.occurred_at
        fields += ["cod_collected_amount", "cod_collected_at"]
    if event.state == T.CANCELLED:
        shipment.create_status = Shipment.CreateStatus.CANCELLED
        fields.append("create_status")
    if not is_late:
        shipment.state, shipment.reason = event.state, event.reason
        shipment.reported_status = event.raw_code[:100]
        shipment.last_event_at = event.occurred_at
        fields += ["state", "reason", "reported_status", "last_event_at"]
    shipment.save(update_fields=fields)


def _order_follow(order: Order, event: TrackingEvent, is_late: bool) -> tuple[bool, str, OrderEvent | None]:
    """Move the order to where the event says the parcel is; (applied, why not, last order event)."""
    target = ORDER_STATUS_FOR_STATE.get(event.state)
    if target is None:
        return False, NOTE_NO_MOVE, None
    if order.status == target:
        return False, NOTE_ALREADY_THERE, None
    if is_late:
        return False, NOTE_LATE, None
    current_rank, target_rank = RANK.get(order.status), RANK[target]
    if current_rank is None:
        return False, NOTE_NOT_IN_DELIVERY, None
    if target_rank <= current_rank and (order.status, target) != REATTEMPT:
        return False, NOTE_FURTHER_ALONG, None
    path = carrier_path(order.status, target, order.payment_method)
    if not path:
        return False, NOTE_NO_PATH, None
    order_event = None
    try:
        for name in path:
            order_event = order_transition(
                order.pk,
                name,
                source=OrderEvent.Source.CARRIER,
                reason=_reason_words(event.reason) if name == path[-1] else "",
                payload={"tracking_event": event.pk, "raw_code": event.raw_code},
                idempotency_key=f"carrier:{event.carrier}:{event.dedup_key}:{name}",
            )
    except IllegalTransition:
        return False, NOTE_NO_PATH, order_event
    return True, "", order_event
