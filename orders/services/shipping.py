"""Marking an order shipped by hand (admin, API), with the parcel's carrier and tracking number."""

from django.db import transaction

from orders.models import Order, OrderEvent
from orders.platforms import IncomingShipment
from orders.services.transitions import order_transition
from orders.signals import shipment_reported


def order_ship(
    order: Order,
    *,
    source: str,
    actor=None,
    carrier: str = "",
    tracking_number: str = "",
    tracking_url: str = "",
    reason: str = "",
    payload: dict | None = None,
    expected_status: str | None = None,
) -> OrderEvent:
    """The "ship" transition, and the parcel it names recorded in the same transaction.

    The transition's payload carries the carrier and tracking link: the customer's shipped message
    reads them there (without a link it falls back to its untracked text). A refused transition
    records no shipment either.
    """
    parcel = {"carrier": carrier, "tracking_number": tracking_number, "tracking_url": tracking_url}
    with transaction.atomic():
        event = order_transition(
            order,
            "ship",
            source=source,
            actor=actor,
            reason=reason,
            payload={**(payload or {}), **{key: value for key, value in parcel.items() if value}},
            expected_status=expected_status,
        )
        if carrier or tracking_number:
            locked = Order.objects.get(pk=event.order_id)
            # Carriers records it (orders never imports carriers): see orders.signals.
            shipment_reported.send(
                sender=Order, order=locked, shipment=IncomingShipment(**parcel), source=source
            )
    return event
