"""What a store's delivery does to orders: the same for every platform, through the orders services.

A platform adapter (``orders.platforms``) turns a payload into ``StoreAction`` values; here they
are applied in one transaction: customers upserted by phone then e-mail, orders created through
``order_create`` or updated when the platform's ``updated_at`` is newer, status moves through
``order_transition`` with ``source="store"``. Whatever cannot be applied without guessing (a
cancel for a parcel already out, an unknown shipment status) changes nothing, is written on the
order's timeline and flags the delivery for a human.
"""

import logging
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import DataError, IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from orders import untrusted_json
from orders.errors import IllegalTransition
from orders.models import Order, OrderEvent, OrderItem, Store, StoreDelivery
from orders.platforms import IncomingOrder, MalformedPayload, StoreAction, UnknownTopic, get_platform
from orders.services.customers import customer_upsert
from orders.services.transitions import order_create, order_transition
from orders.signals import consent_claimed, shipment_reported
from orders.transitions import OrderStatus, PaymentMethod

logger = logging.getLogger(__name__)
S = OrderStatus

# A platform's shipment status → the transition it asks for. Statuses that say nothing about
# where the parcel is (a label printed) map to None; anything else is kept and flagged.
SHIPMENT_STATUS_TRANSITIONS: dict[str, str | None] = {
    "": None,
    "label_printed": None,
    "label_purchased": None,
    "confirmed": None,
    "ready_for_pickup": None,
    "in_transit": "mark_in_transit",
    "out_for_delivery": "mark_out_for_delivery",
    "attempted_delivery": "fail_delivery",
    "failure": "fail_delivery",
    "delivered": "deliver",
}
# How far along an order is: a late report of an earlier step is not an error, only old news.
PROGRESS = {
    S.SHIPPED: 1,
    S.IN_TRANSIT: 2,
    S.OUT_FOR_DELIVERY: 3,
    S.DELIVERY_FAILED: 3,
    S.DELIVERED: 4,
    S.RTO_INITIATED: 4,
    S.RETURNED: 5,
    S.REFUNDED: 5,
}
TRANSITION_TARGET = {
    "ship": S.SHIPPED,
    "mark_in_transit": S.IN_TRANSIT,
    "mark_out_for_delivery": S.OUT_FOR_DELIVERY,
    "fail_delivery": S.DELIVERY_FAILED,
    "deliver": S.DELIVERED,
}


@dataclass
class IngestOutcome:
    order: Order | None = None
    created: bool = False
    applied: list[str] = field(default_factory=list)  # what changed, e.g. "created", "cancel"
    notes: list[str] = field(default_factory=list)  # what a human may want to know
    flagged: bool = False
    stale: bool = False  # the delivery is older than what Livra has

    def flag(self, note: str) -> None:
        self.flagged = True
        self.notes.append(note)


# --- processing a stored delivery ----------------------------------------------------------------
# A delivery whose processing raised (a bug, a lock or statement timeout) is tried again by itself,
# MAX_ATTEMPTS times in all, after about 1, 4, 16 and 60 minutes; then it is "failed" and waits for a
# person. Flagged deliveries are not retried: the same input would say the same thing again. (An
# attempt whose outcome cannot be recorded, the database gone, leaves the row as it was: the sweep
# wakes the drain for it again.)
MAX_ATTEMPTS = 5
RETRY_FIRST_DELAY = timedelta(minutes=1)
RETRY_GROWTH = 4
RETRY_MAX_DELAY = timedelta(hours=1)


def store_deliveries_due(now: datetime | None = None) -> QuerySet[StoreDelivery]:
    """What the inbox drain processes: new deliveries, and failed ones whose retry time has come."""
    now = now or timezone.now()
    return StoreDelivery.objects.filter(
        Q(status=StoreDelivery.Status.RECEIVED)
        | Q(status=StoreDelivery.Status.RETRYING, next_attempt_at__lte=now)
    )


def store_delivery_retry_delay(attempts: int) -> timedelta:
    """How long after its ``attempts``-th failed attempt a delivery is tried again: exponential, and
    a random half to all of it (jitter), so that deliveries failed together do not return together."""
    ceiling = min(RETRY_MAX_DELAY, RETRY_FIRST_DELAY * RETRY_GROWTH ** (attempts - 1))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security


def store_delivery_process(delivery_id: int) -> StoreDelivery | None:
    """Process one due inbox row: read it, apply what it says, record how it went. Never loses it.

    The row stays locked until its outcome is recorded, so no two workers process it at once.
    """
    with transaction.atomic():
        delivery = (
            store_deliveries_due()
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("store")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None  # processed already, not due yet, or another worker has it
        delivery.attempts += 1
        try:
            # A savepoint: a failure undoes the delivery's effects, not the record of the failure.
            with transaction.atomic():
                outcome = _apply_delivery(delivery)
        except DataError as exc:
            # A value the columns cannot hold (a number too long, an amount too large): bad input
            # that no retry fixes, like a malformed payload; the database's first line says which.
            logger.warning("store delivery flagged delivery_id=%s: a value does not fit", delivery.pk)
            outcome = _flagged(f"a value does not fit Livra's columns: {str(exc).splitlines()[0][:300]}")
            delivery.status, delivery.notes = _status_for(outcome), outcome.notes
            delivery.error = delivery.error_trace = ""
            delivery.next_attempt_at = None
        except Exception as exc:  # a bug or bad data we did not foresee: keep it, show it, retry it
            logger.exception(
                "store delivery failed delivery_id=%s platform=%s attempt=%s",
                delivery.pk,
                delivery.platform,
                delivery.attempts,
            )
            _record_failure(delivery, exc)
        else:
            delivery.status = _status_for(outcome)
            delivery.order = outcome.order
            delivery.notes = outcome.notes
            delivery.error = delivery.error_trace = ""
            delivery.next_attempt_at = None
        delivery.processed_at = timezone.now()
        delivery.save()
    logger.info("store delivery processed delivery_id=%s status=%s", delivery.pk, delivery.status)
    return delivery


def _record_failure(delivery: StoreDelivery, exc: Exception) -> None:
    delivery.error = f"{type(exc).__name__}: {exc}"[:2000]
    delivery.error_trace = traceback.format_exc()[-10000:]
    if delivery.attempts < MAX_ATTEMPTS:
        delivery.status = StoreDelivery.Status.RETRYING
        delivery.next_attempt_at = timezone.now() + store_delivery_retry_delay(delivery.attempts)
    else:
        delivery.status = StoreDelivery.Status.FAILED
        delivery.next_attempt_at = None


def _status_for(outcome: IngestOutcome) -> str:
    if outcome.flagged:
        return StoreDelivery.Status.FLAGGED
    if outcome.stale and not outcome.applied:
        return StoreDelivery.Status.SKIPPED
    return StoreDelivery.Status.PROCESSED


# Other apps' webhooks share this inbox (carriers' tracking pushes): the same row, drain, retries,
# flags and admin, not a second copy. Such an app registers how its platform's deliveries are
# applied; the applier runs in the delivery's savepoint, like a store platform's, and never calls out.
_INBOX_APPLIERS: dict[str, Callable[[StoreDelivery], IngestOutcome]] = {}


def inbox_applier_register(platform: str, apply: Callable[[StoreDelivery], IngestOutcome]) -> None:
    _INBOX_APPLIERS[platform] = apply


def _apply_delivery(delivery: StoreDelivery) -> IngestOutcome:
    applier = _INBOX_APPLIERS.get(delivery.platform)
    if applier is not None:
        return applier(delivery)
    try:
        payload = untrusted_json.loads(bytes(delivery.body))
    except ValueError as exc:  # UnicodeDecodeError and JSONTooDeep included
        return _flagged(f"the body is not JSON: {exc}")
    platform = get_platform(delivery.platform)
    try:
        actions = platform.parse(delivery.topic, payload, delivery.store)
    except UnknownTopic:
        return _flagged(f"unknown topic {delivery.topic!r}: kept, not processed")
    except MalformedPayload as exc:
        return _flagged(f"malformed {delivery.topic or 'payload'}: {exc}")
    evidence = {"delivery_id": delivery.pk, "platform": delivery.platform, "topic": delivery.topic}
    return store_actions_apply(
        delivery.store,
        actions,
        source=OrderEvent.Source.STORE,
        evidence=evidence,
        key=f"delivery:{delivery.pk}",
    )


def _flagged(note: str) -> IngestOutcome:
    outcome = IngestOutcome()
    outcome.flag(note)
    return outcome


# --- applying actions ----------------------------------------------------------------------------
def store_actions_apply(
    store: Store,
    actions: list[StoreAction],
    *,
    source: str,
    actor=None,
    evidence: dict | None = None,
    key: str | None = None,
) -> IngestOutcome:
    """Apply a delivery's (or an API call's) actions in one transaction.

    ``evidence`` is kept with consent records and events; ``key`` makes the status moves
    idempotent (``<key>:<action index>``), so a re-processed delivery moves nothing twice.
    """
    outcome = IngestOutcome()
    context = _Context(store, source, actor, evidence or {}, key)
    with transaction.atomic():
        for index, action in enumerate(actions):
            handler = _HANDLERS.get(action.kind)
            if handler is None:
                raise ValueError(f"unknown store action {action.kind!r}")
            if outcome.stale and action.kind != "upsert":
                continue  # the rest of an old delivery is old news too
            handler(context, action, outcome, f"{key}:{index}" if key else None)
    return outcome


@dataclass
class _Context:
    store: Store
    source: str
    actor: object
    evidence: dict
    key: str | None


def _locked_order(store: Store, external_id: str) -> Order | None:
    return Order.objects.select_for_update().filter(store=store, external_id=external_id).first()


def _apply_upsert(context: _Context, action: StoreAction, outcome: IngestOutcome, key) -> None:
    incoming = action.order
    order = _locked_order(context.store, incoming.external_id)
    if order is None:
        order = _order_create(context, incoming, outcome)
        if order is not None:
            return
        order = _locked_order(context.store, incoming.external_id)  # a concurrent delivery made it
    outcome.order = order
    if incoming.updated_at and order.external_updated_at and incoming.updated_at <= order.external_updated_at:
        outcome.stale = True
        outcome.notes.append(
            f"older than what Livra has (updated_at {incoming.updated_at.isoformat()} ≤ "
            f"{order.external_updated_at.isoformat()}): nothing changed"
        )
        return
    _order_update(context, order, incoming, outcome)
    _accept_if_paid(context, order, incoming, outcome)  # paid since: accepted now


def _order_create(context: _Context, incoming: IncomingOrder, outcome: IngestOutcome) -> Order | None:
    customer = _customer_for(context, incoming, outcome)
    order = Order(
        store=context.store,
        external_id=incoming.external_id,
        number=incoming.number,
        customer=customer,
        payment_method=incoming.payment_method,
        currency=incoming.currency or context.store.currency,
        total_amount=incoming.total_amount,
        cod_amount=incoming.cod_amount if incoming.payment_method == PaymentMethod.COD else 0,
        shipping_address=incoming.shipping_address,
        shipping_city=incoming.shipping_city,
        notes=incoming.notes,
        tags=list(incoming.tags),
        placed_at=incoming.placed_at,
        external_updated_at=incoming.updated_at,
    )
    try:
        with transaction.atomic():  # a savepoint: a concurrent twin may have made it first
            order_create(order, source=context.source, actor=context.actor)
    except IntegrityError:
        return None
    OrderItem.objects.bulk_create(_items_for(order, incoming))
    outcome.order, outcome.created = order, True
    outcome.applied.append("created")
    _accept_if_paid(context, order, incoming, outcome)
    return order


def _accept_if_paid(context: _Context, order: Order, incoming: IncomingOrder, outcome: IngestOutcome) -> None:
    """An order the store says is paid is accepted (when it is created or updated). The rest of a new
    order's first move (a COD order is asked to confirm) is the store's rules' (automations), which
    ran when ``order_create`` wrote it."""
    if incoming.paid and order.payment_method == PaymentMethod.PREPAID and order.status == S.PLACED:
        # The store's fact, not a user's move: no user's transition permission is asked for.
        _transition(
            context, order, "accept", outcome, key=f"{order.pk}:paid", reason="paid", as_workflow=True
        )


def _order_update(context: _Context, order: Order, incoming: IncomingOrder, outcome: IngestOutcome) -> None:
    customer = _customer_for(context, incoming, outcome)
    wanted = {
        "number": incoming.number,
        "customer_id": customer.pk,
        "currency": incoming.currency or order.currency,
        "total_amount": incoming.total_amount,
        "cod_amount": incoming.cod_amount if order.payment_method == PaymentMethod.COD else order.cod_amount,
        "shipping_address": incoming.shipping_address,
        "shipping_city": incoming.shipping_city,
        "notes": incoming.notes,
        "tags": list(incoming.tags),
    }
    changed = [name for name, value in wanted.items() if getattr(order, name) != value]
    for name in changed:
        setattr(order, name, wanted[name])
    items = _items_for(order, incoming)
    if _item_rows(order.items.all()) != _item_rows(items):
        order.items.all().delete()
        OrderItem.objects.bulk_create(items)
        changed.append("items")
    order.external_updated_at = incoming.updated_at or order.external_updated_at
    order.save(update_fields=[*(n for n in changed if n != "items"), "external_updated_at", "updated_at"])
    if changed:
        _fact(context, order, "updated_by_store", fields=[name.removesuffix("_id") for name in changed])
        outcome.applied.append("updated")


def _customer_for(context: _Context, incoming: IncomingOrder, outcome: IngestOutcome):
    given = incoming.customer
    customer, notes = customer_upsert(
        context.store, name=given.name, phone=given.phone, email=given.email, language=given.language
    )
    outcome.notes += notes
    for claim in given.consents:
        consent_claimed.send(sender=type(customer), customer=customer, claim=claim, evidence=context.evidence)
    return customer


def _items_for(order: Order, incoming: IncomingOrder) -> list[OrderItem]:
    return [
        OrderItem(
            order=order, sku=item.sku, title=item.title, quantity=item.quantity, unit_price=item.unit_price
        )
        for item in incoming.items
    ]


def _item_rows(items) -> list[tuple]:
    return sorted((item.sku, item.title, item.quantity, item.unit_price) for item in items)


def _apply_cancel(context, action, outcome, key) -> None:
    order = _existing(context, action, outcome)
    if order is not None and order.status != S.CANCELLED:
        _transition(
            context, order, "cancel", outcome, key=key, reason=action.reason or "cancelled by the store"
        )


def _apply_refund(context, action, outcome, key) -> None:
    order = _existing(context, action, outcome)
    if order is None or order.status == S.REFUNDED:
        return
    amount = action.detail.get("amount")
    if amount is not None and Decimal(amount) < order.total_amount:
        # A partial refund (an item returned, a goodwill gesture): a fact for the timeline; the
        # order itself is not refunded.
        _fact(context, order, "partial_refund_recorded", reason=action.reason, **action.detail)
        outcome.applied.append("partial refund recorded")
        return
    _transition(context, order, "refund", outcome, key=key, reason=action.reason or "refunded by the store")


def _apply_paid(context, action, outcome, key) -> None:
    order = _existing(context, action, outcome)
    if order is None:
        return
    if order.payment_method == PaymentMethod.PREPAID and order.status == S.PLACED:
        _transition(context, order, "accept", outcome, key=key, reason="paid")
        return
    # COD cash collected, or a payment Livra already counted on: a fact for the timeline, no move;
    # once (WooCommerce repeats "completed" with every later update of the order).
    if order.events.filter(type="payment_recorded").exists():
        return
    _fact(context, order, "payment_recorded")
    outcome.applied.append("payment recorded")


def _apply_shipment(context, action, outcome, key) -> None:
    order = _existing(context, action, outcome)
    if order is None:
        return
    shipment = action.shipment
    shipment_reported.send(sender=Order, order=order, shipment=shipment, source=context.source)
    outcome.applied.append("shipment recorded")
    if shipment.status not in SHIPMENT_STATUS_TRANSITIONS:
        outcome.flag(f"unknown shipment status {shipment.status!r}: kept on the shipment, status unchanged")
        _not_applied(context, order, f"shipment status {shipment.status!r}")
        return
    payload = {
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "tracking_url": shipment.tracking_url,
    }
    moves = ["ship"] if order.status in (S.CONFIRMED, S.PROCESSING) else []
    if order.status in (S.PLACED, S.AWAITING_CONFIRMATION):
        outcome.flag(
            f"the store shipped an order that is {order.status} in Livra: shipment kept, status unchanged"
        )
        _not_applied(context, order, "ship")
        return
    if (then := SHIPMENT_STATUS_TRANSITIONS[shipment.status]) is not None:
        moves.append(then)
    for index, name in enumerate(moves):
        order.refresh_from_db(fields=["status", "status_version"])
        target = TRANSITION_TARGET[name]
        if order.status == target or PROGRESS.get(order.status, 0) > PROGRESS[target]:
            outcome.notes.append(f"{name}: old news, the order is {order.status} already")
            continue
        _transition(context, order, name, outcome, key=f"{key}:{index}" if key else None, payload=payload)


def _apply_flag(context, action, outcome, key) -> None:
    order = _existing(context, action, outcome, quiet=True)
    outcome.flag(action.reason)
    if order is not None:
        _not_applied(context, order, action.reason)


_HANDLERS = {
    "upsert": _apply_upsert,
    "cancel": _apply_cancel,
    "refund": _apply_refund,
    "paid": _apply_paid,
    "shipment": _apply_shipment,
    "flag": _apply_flag,
}


def _existing(context: _Context, action: StoreAction, outcome: IngestOutcome, quiet: bool = False):
    order = outcome.order if outcome.order and outcome.order.external_id == action.external_id else None
    order = order or _locked_order(context.store, action.external_id)
    if order is None and not quiet:
        outcome.flag(f"{action.kind} for order {action.external_id!r}, which Livra does not have")
    outcome.order = outcome.order or order
    return order


def _transition(
    context, order: Order, name: str, outcome, *, key, reason: str = "", payload=None, as_workflow=False
) -> None:
    try:
        order_transition(
            order,
            name,
            source=context.source,
            actor=None if as_workflow else context.actor,
            reason=reason,
            payload={**(payload or {}), **context.evidence},
            idempotency_key=f"store:{key}" if key else None,
        )
    except IllegalTransition:
        outcome.flag(f"{name} is not possible from {order.status}: not applied")
        _not_applied(context, order, name)
        return
    outcome.applied.append(name)


def _not_applied(context: _Context, order: Order, asked: str) -> None:
    """Put what the store said, and Livra did not do, on the order's timeline."""
    _fact(context, order, "store_update_not_applied", reason=f"{asked} (order was {order.status})")


def _fact(context: _Context, order: Order, kind: str, *, reason: str = "", **payload) -> None:
    """A fact the store told Livra, on the order's timeline (no status change), with its evidence."""
    OrderEvent.objects.create(
        order=order,
        type=kind,
        source=context.source,
        actor=context.actor,
        reason=reason,
        payload={**payload, **context.evidence},
    )
