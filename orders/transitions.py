"""The order status state machine, as data.

This table is the single source of truth: ``orders.models.Order`` declares one django-fsm
transition per row by reading it, ``tests/orders/test_transition_table.py`` checks that the
model and the table agree, and ``manage.py status_diagram`` renders the README diagram from it.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop


class OrderStatus(models.TextChoices):
    PLACED = "placed", _("Placed")
    AWAITING_CONFIRMATION = "awaiting_confirmation", _("Awaiting confirmation")
    CONFIRMED = "confirmed", _("Confirmed")
    PROCESSING = "processing", _("Processing")
    SHIPPED = "shipped", _("Shipped")
    IN_TRANSIT = "in_transit", _("In transit")
    OUT_FOR_DELIVERY = "out_for_delivery", _("Out for delivery")
    DELIVERY_FAILED = "delivery_failed", _("Delivery failed")
    DELIVERED = "delivered", _("Delivered")
    RTO_INITIATED = "rto_initiated", _("Return to origin initiated")
    RETURNED = "returned", _("Returned")
    CANCELLED = "cancelled", _("Cancelled")
    REFUNDED = "refunded", _("Refunded")


class PaymentMethod(models.TextChoices):
    COD = "cod", _("Cash on delivery")
    PREPAID = "prepaid", _("Prepaid")


# Conditions are pure functions of the order: no queries, no I/O.
def is_cod(order) -> bool:
    return order.payment_method == PaymentMethod.COD


def is_prepaid(order) -> bool:
    return order.payment_method == PaymentMethod.PREPAID


def customer_has_paid(order) -> bool:
    """Money can only be refunded if it was taken: prepaid, or COD cash collected at the door."""
    return is_prepaid(order) or order.status == OrderStatus.DELIVERED


@dataclass(frozen=True)
class TransitionSpec:
    name: str
    sources: tuple[str, ...]
    target: str
    permission: str  # codename in the orders app, e.g. "confirm_order"
    event_type: str  # past tense, written on the OrderEvent
    # What the admin button says: English here (the permission's name is made from it), marked
    # with gettext_noop and translated where it is shown.
    label: str
    conditions: tuple[Callable, ...] = ()

    @property
    def permission_label(self) -> str:
        return f"Can {self.label[0].lower()}{self.label[1:]}"


S = OrderStatus
IN_FLIGHT = (S.SHIPPED, S.IN_TRANSIT, S.OUT_FOR_DELIVERY)

TRANSITIONS: tuple[TransitionSpec, ...] = (
    TransitionSpec(
        "request_confirmation",
        (S.PLACED,),
        S.AWAITING_CONFIRMATION,
        "request_order_confirmation",
        "confirmation_requested",
        gettext_noop("Request COD confirmation"),
        (is_cod,),
    ),
    # Prepaid orders skip confirmation: the payment is the customer's commitment.
    TransitionSpec(
        "accept",
        (S.PLACED,),
        S.CONFIRMED,
        "accept_order",
        "accepted",
        gettext_noop("Accept prepaid order"),
        (is_prepaid,),
    ),
    TransitionSpec(
        "confirm",
        (S.AWAITING_CONFIRMATION,),
        S.CONFIRMED,
        "confirm_order",
        "confirmed",
        gettext_noop("Confirm order"),
    ),
    TransitionSpec(
        "cancel",
        (S.PLACED, S.AWAITING_CONFIRMATION, S.CONFIRMED, S.PROCESSING),
        S.CANCELLED,
        "cancel_order",
        "cancelled",
        gettext_noop("Cancel order"),
    ),
    TransitionSpec(
        "start_processing",
        (S.CONFIRMED,),
        S.PROCESSING,
        "process_order",
        "processing_started",
        gettext_noop("Start processing"),
    ),
    TransitionSpec(
        "ship", (S.CONFIRMED, S.PROCESSING), S.SHIPPED, "ship_order", "shipped", gettext_noop("Mark shipped")
    ),
    TransitionSpec(
        "mark_in_transit",
        (S.SHIPPED,),
        S.IN_TRANSIT,
        "mark_order_in_transit",
        "in_transit_reported",
        gettext_noop("Mark in transit"),
    ),
    TransitionSpec(
        "mark_out_for_delivery",
        (S.SHIPPED, S.IN_TRANSIT),
        S.OUT_FOR_DELIVERY,
        "mark_order_out_for_delivery",
        "out_for_delivery_reported",
        gettext_noop("Mark out for delivery"),
    ),
    TransitionSpec(
        "fail_delivery",
        (S.OUT_FOR_DELIVERY,),
        S.DELIVERY_FAILED,
        "fail_order_delivery",
        "delivery_failed",
        gettext_noop("Record failed delivery"),
    ),
    TransitionSpec(
        "reschedule_delivery",
        (S.DELIVERY_FAILED,),
        S.OUT_FOR_DELIVERY,
        "reschedule_order_delivery",
        "delivery_rescheduled",
        gettext_noop("Reschedule delivery"),
    ),
    # Carriers skip scans: a parcel may be delivered straight from shipped or in transit.
    TransitionSpec(
        "deliver", IN_FLIGHT, S.DELIVERED, "deliver_order", "delivered", gettext_noop("Mark delivered")
    ),
    TransitionSpec(
        "initiate_return",
        (*IN_FLIGHT, S.DELIVERY_FAILED),
        S.RTO_INITIATED,
        "initiate_order_return",
        "return_initiated",
        gettext_noop("Start return to origin"),
    ),
    TransitionSpec(
        "mark_returned",
        (S.RTO_INITIATED,),
        S.RETURNED,
        "mark_order_returned",
        "returned",
        gettext_noop("Mark returned to origin"),
    ),
    TransitionSpec(
        "refund",
        (S.DELIVERED, S.RETURNED, S.CANCELLED),
        S.REFUNDED,
        "refund_order",
        "refunded",
        gettext_noop("Refund order"),
        (customer_has_paid,),
    ),
)

TRANSITIONS_BY_NAME: dict[str, TransitionSpec] = {spec.name: spec for spec in TRANSITIONS}
# Where an order's life may end (a paid order may still be refunded from some of them).
FINAL_STATUSES = (S.DELIVERED, S.CANCELLED, S.RETURNED, S.REFUNDED)


def transition_kwargs(name: str) -> dict:
    """Arguments for ``django_fsm.transition`` built from the table row ``name``."""
    spec = TRANSITIONS_BY_NAME[name]
    return {
        "field": "status",
        "source": [str(s) for s in spec.sources],
        "target": str(spec.target),
        "permission": f"orders.{spec.permission}",
        "conditions": list(spec.conditions),
    }


def mermaid_diagram() -> str:
    """The state diagram for the README, in Mermaid syntax (GitHub renders it)."""
    lines = ["stateDiagram-v2", f"    [*] --> {S.PLACED.value}"]
    for spec in TRANSITIONS:
        guard = f" [{', '.join(c.__name__ for c in spec.conditions)}]" if spec.conditions else ""
        for source in spec.sources:
            lines.append(f"    {source} --> {spec.target}: {spec.name}{guard}")
    lines.extend(f"    {status} --> [*]" for status in FINAL_STATUSES)
    return "\n".join(lines)


def shortest_path(target: str, payment_method: str, start: str = S.PLACED) -> list[str]:
    """Transition names that take an order paid by ``payment_method`` from ``start`` to ``target``.

    Used to seed demo data and build test orders through the real write path.
    """
    paths: dict[str, list[str]] = {start: []}
    queue = deque([start])
    while queue:
        status = queue.popleft()
        if status == target:
            return paths[status]
        probe = SimpleNamespace(status=status, payment_method=payment_method)
        for spec in TRANSITIONS:
            reachable = status in spec.sources and all(cond(probe) for cond in spec.conditions)
            if reachable and spec.target not in paths:
                paths[spec.target] = [*paths[status], spec.name]
                queue.append(spec.target)
    raise ValueError(f"{target!r} cannot be reached from {start!r} by a {payment_method} order")
