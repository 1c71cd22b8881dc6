"""Actions that change orders. ``order_transition`` is the one write path for ``Order.status``."""

import logging
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
from orders.transitions import TRANSITIONS_BY_NAME

logger = logging.getLogger(__name__)


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
        status_entered.send(sender=Order, order=order, event=event)
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
    spec = TRANSITIONS_BY_NAME.get(name)
    if spec is None:
        raise UnknownTransition(name)
    if source not in OrderEvent.Source.values:
        raise ValueError(f"unknown event source {source!r}")
    if source == OrderEvent.Source.AGENT and actor is None:
        raise ValueError("an agent transition needs the acting user")

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

            from_status = locked.status
            locked.status_version += 1
            locked.status_changed_at = timezone.now()
            method()  # pure (django-fsm's post_transition fires here, before the save)
            locked.save(update_fields=["status", "status_version", "status_changed_at", "updated_at"])
            event = OrderEvent.objects.create(
                order=locked,
                type=spec.event_type,
                transition=name,
                from_status=from_status,
                to_status=locked.status,
                status_version=locked.status_version,
                source=source,
                actor=actor,
                reason=reason,
                payload=payload or {},
                idempotency_key=idempotency_key,
            )
            status_entered.send(sender=Order, order=locked, event=event)
    except IntegrityError:
        # Only a racing duplicate of the same idempotency key can get here (the row lock
        # serializes everything else): the other call won, so answer with its event.
        if idempotency_key is None:
            raise
        return OrderEvent.objects.get(order_id=order_id, idempotency_key=idempotency_key)

    logger.info(
        "order transition applied order_id=%s transition=%s from=%s to=%s source=%s event_id=%s",
        order_id,
        name,
        from_status,
        event.to_status,
        source,
        event.pk,
    )
    if isinstance(order, Order) and order is not locked:
        # Let the caller's instance reflect what was committed.
        order.refresh_from_db(fields=["status", "status_version", "status_changed_at", "updated_at"])
    return event
