"""Actions that change orders. ``order_transition`` is the one write path for ``Order.status``;
``order_transitions_apply`` is the same path for many orders at once (a carrier's batch of news)."""

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm import can_proceed, has_transition_perm

from orders.errors import (
    IllegalTransition,
    StaleOrderStatus,
    TransitionPermissionDenied,
    UnknownTransition,
)
from orders.models import Order, OrderEvent
from orders.signals import status_entered
from orders.transitions import TRANSITIONS_BY_NAME, TransitionSpec

logger = logging.getLogger(__name__)

# What a status change writes on the order's row.
STATUS_FIELDS = ["status", "status_version", "status_changed_at", "updated_at"]


@dataclass(frozen=True)
class Move:
    """One order's transition in a batch (``order_transitions_apply``)."""

    order: Order  # locked by the caller's transaction, with its store and customer
    name: str
    reason: str = ""
    payload: dict[str, Any] | None = None
    idempotency_key: str | None = None


def order_create(order: Order, *, source: str, actor=None) -> OrderEvent:
    """Save a new order (status ``placed``) with the first event of its timeline."""
    if order.pk is not None:
        raise ValueError("order_create takes an unsaved order")
    with transaction.atomic():
        order.save()
        event = OrderEvent.objects.create(
            order=order,
            type="placed",
            to_status=order.status,
            status_version=order.status_version,
            source=source,
            actor=actor,
        )
        status_entered.send(sender=Order, entries=[(order, event)])
    logger.info("order created order_id=%s source=%s", order.pk, source)
    return event


def order_transition(
    order: Order | int,
    name: str,
    *,
    source: str,
    actor=None,
    reason: str = "",
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    expected_status: str | None = None,
) -> OrderEvent:
    """Move ``order`` through transition ``name`` and record it; return the ``OrderEvent``.

    Runs in its own transaction (or joins the caller's) and holds the order's row lock until
    it commits, so concurrent callers are serialized and the loser gets a domain error.
    Once the status and its event are written, ``status_entered`` is sent in this same
    transaction: the store's rules (automations) run there, and the customer's outbox rows they
    write commit or roll back with the change. A rule may move the order on again from there.

    - ``actor``: the user acting, if any; their transition permission is checked. Calls
      without a user come from trusted code (store or carrier webhooks, jobs).
    - ``idempotency_key``: a repeat of an already applied key returns the first event and
      changes nothing.
    - ``expected_status``: the status the caller saw; if the order has moved on, the call is
      refused with ``StaleOrderStatus`` instead of acting on a state nobody looked at.
    """
    spec = _spec(name)
    _check_source(source, actor)

    order_id = order.pk if isinstance(order, Order) else order
    try:
        with transaction.atomic():
            # The store and the customer come with the row (only the order's row is locked): the
            # status entry's rules and the customer's messages read them.
            locked = (
                Order.objects.select_for_update(of=("self",))
                .select_related("store", "customer")
                .get(pk=order_id)
            )
            if idempotency_key is not None:
                first = OrderEvent.objects.filter(order=locked, idempotency_key=idempotency_key).first()
                if first is not None:
                    return first
            if expected_status is not None and locked.status != expected_status:
                raise StaleOrderStatus(locked, expected_status)

            method = getattr(locked, name)
            if not can_proceed(method):
                raise IllegalTransition(locked, name)
            if actor is not None and not has_transition_perm(method, actor):
                raise TransitionPermissionDenied(actor, name)

            event = _status_move(
                locked,
                spec,
                source=source,
                actor=actor,
                reason=reason,
                payload=payload,
                idempotency_key=idempotency_key,
            )
            _status_moves_write([event])
    except IntegrityError:
        # Only a racing duplicate of the same idempotency key can get here (the row lock
        # serializes everything else): the other call won, so answer with its event.
        if idempotency_key is None:
            raise
        return OrderEvent.objects.get(order_id=order_id, idempotency_key=idempotency_key)

    _log_applied(event)
    if isinstance(order, Order) and order is not locked:
        # Let the caller's instance reflect what was committed.
        order.refresh_from_db(fields=["status", "status_version", "status_changed_at", "updated_at"])
    return event


def order_transitions_apply(moves: list[Move], *, source: str) -> list[OrderEvent | None]:
    """``order_transition`` for many orders at once, from trusted code (no acting user): each move
    is checked, applied and recorded as ``order_transition`` would, the lot with a few statements
    (one read of the keys already applied, one UPDATE of the orders, one INSERT of their events),
    and ``status_entered`` is sent once with every entry, so the store's rules run set-based too.

    The caller's transaction holds each order's row lock (as ``rule_run_many``'s callers do); one
    move per order. Returns per move its ``OrderEvent``: the first one when its idempotency key
    was applied already, or None when the transition cannot apply from the order's status (that
    order is left as it is).
    """
    _check_source(source, None)
    if len({move.order.pk for move in moves}) != len(moves):
        raise ValueError("order_transitions_apply takes one move per order")
    keyed = [move for move in moves if move.idempotency_key is not None]
    applied = {}
    if keyed:
        firsts = OrderEvent.objects.filter(
            order_id__in=[move.order.pk for move in keyed],
            idempotency_key__in=[move.idempotency_key for move in keyed],
        )
        applied = {(event.order_id, event.idempotency_key): event for event in firsts}
    results: list[OrderEvent | None] = []
    for move in moves:
        spec = _spec(move.name)
        first = applied.get((move.order.pk, move.idempotency_key))
        if first is not None or not can_proceed(getattr(move.order, move.name)):
            results.append(first)
            continue
        results.append(
            _status_move(
                move.order,
                spec,
                source=source,
                actor=None,
                reason=move.reason,
                payload=move.payload,
                idempotency_key=move.idempotency_key,
            )
        )
    written = [event for event in results if event is not None and event.pk is None]
    _status_moves_write(written)
    for event in written:
        _log_applied(event)
    return results


def _spec(name: str) -> TransitionSpec:
    spec = TRANSITIONS_BY_NAME.get(name)
    if spec is None:
        raise UnknownTransition(name)
    return spec


def _check_source(source: str, actor) -> None:
    if source not in OrderEvent.Source.values:
        raise ValueError(f"unknown event source {source!r}")
    if source == OrderEvent.Source.AGENT and actor is None:
        raise ValueError("an agent transition needs the acting user")


def _status_move(order: Order, spec: TransitionSpec, *, source, actor, reason, payload, idempotency_key):
    """Run the transition on the locked ``order`` in memory; its event, not saved yet."""
    from_status = order.status
    order.status_version += 1
    order.status_changed_at = order.updated_at = timezone.now()
    getattr(order, spec.name)()  # pure (django-fsm's post_transition fires here, before the save)
    return OrderEvent(
        order=order,
        type=spec.event_type,
        transition=spec.name,
        from_status=from_status,
        to_status=order.status,
        status_version=order.status_version,
        source=source,
        actor=actor,
        reason=reason,
        payload=payload or {},
        idempotency_key=idempotency_key,
    )


def _log_applied(event: OrderEvent) -> None:
    logger.info(
        "order transition applied order_id=%s transition=%s from=%s to=%s source=%s event_id=%s",
        event.order_id,
        event.transition,
        event.from_status,
        event.to_status,
        event.source,
        event.pk,
    )


def _status_moves_write(events: list[OrderEvent]) -> None:
    """Save the moved orders and their events, then tell the other apps (still inside the
    transaction: what their receivers write commits or rolls back with the change)."""
    if not events:
        return
    orders = [event.order for event in events]
    # The row locks stand in for ConcurrentTransitionMixin's status check: nobody else can have
    # moved these rows since they were read.
    Order.objects.bulk_update(orders, STATUS_FIELDS)
    OrderEvent.objects.bulk_create(events)
    for order in orders:
        order._update_initial_state()
    status_entered.send(sender=Order, entries=[(event.order, event) for event in events])
