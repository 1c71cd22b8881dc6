"""Data the benchmarks share: many placed COD orders, written in bulk (Django must be set up)."""

from decimal import Decimal


def bulk_cod_orders(store, count: int, prefix: str, *, with_items: bool = False) -> list:
    """``count`` placed COD orders of 249.00 MAD for as many Moroccan customers of ``store``."""
    from django.utils import timezone

    from orders.models import Customer, Order, OrderItem
    from orders.transitions import PaymentMethod

    customers = Customer.objects.bulk_create(
        Customer(store=store, name=f"Customer {i}", phone_raw=f"06{i:08d}", phone=f"+2126{i:08d}")
        for i in range(count)
    )
    now = timezone.now()
    orders = Order.objects.bulk_create(
        Order(
            store=store,
            customer=customer,
            external_id=f"{prefix}-{i}",
            number=f"#{prefix}{i}",
            payment_method=PaymentMethod.COD,
            currency="MAD",
            total_amount=Decimal("249.00"),
            cod_amount=Decimal("249.00"),
            shipping_city="Casablanca",
            placed_at=now,
        )
        for i, customer in enumerate(customers)
    )
    if with_items:  # messages name the items, so orders that will be texted need one
        OrderItem.objects.bulk_create(
            OrderItem(order=order, sku="BAB-42", title="Babouches", quantity=1, unit_price=Decimal("249.00"))
            for order in orders
        )
    return orders
