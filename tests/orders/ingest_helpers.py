"""Incoming orders and actions as a platform adapter would produce them, for the ingest tests."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from orders.platforms import (
    ConsentClaim,
    IncomingCustomer,
    IncomingItem,
    IncomingOrder,
    IncomingShipment,
    StoreAction,
)

PLACED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def incoming_order(external_id: str = "820982911946154508", **changes) -> IncomingOrder:
    customer = changes.pop("customer", None) or IncomingCustomer(
        name="Fatima Zahra", phone="0612345678", email="fatima@example.com", language="fr"
    )
    order = IncomingOrder(
        external_id=external_id,
        number="#1001",
        payment_method="cod",
        paid=False,
        currency="MAD",
        total_amount=Decimal("249.00"),
        cod_amount=Decimal("249.00"),
        customer=customer,
        placed_at=PLACED_AT,
        updated_at=PLACED_AT,
        items=(IncomingItem(title="Babouches", quantity=1, unit_price=Decimal("249.00"), sku="BAB-1"),),
        shipping_address="12 Rue Ibn Battouta",
        shipping_city="Casablanca",
    )
    return replace(order, **changes)


def upsert(order: IncomingOrder) -> StoreAction:
    return StoreAction(kind="upsert", external_id=order.external_id, order=order, updated_at=order.updated_at)


def later(order: IncomingOrder, minutes: int = 5, **changes) -> IncomingOrder:
    return replace(order, updated_at=order.updated_at + timedelta(minutes=minutes), **changes)


def action(kind: str, external_id: str = "820982911946154508", **fields) -> StoreAction:
    return StoreAction(kind=kind, external_id=external_id, **fields)


def shipment(status: str = "", **fields) -> StoreAction:
    values = {"carrier": "Amana", "tracking_number": "LV123456789MA", "tracking_url": "https://t.example/LV1"}
    return action("shipment", shipment=IncomingShipment(status=status, **{**values, **fields}))


def customer(**fields) -> IncomingCustomer:
    return IncomingCustomer(**{"name": "Fatima Zahra", "phone": "0612345678", "email": "", **fields})


def claim(channel: str, subscribed: bool = True) -> ConsentClaim:
    return ConsentClaim(
        channel=channel, subscribed=subscribed, field="buyer_accepts_marketing", value=str(subscribed)
    )
