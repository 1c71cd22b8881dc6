"""Read-only queries about orders."""

from django.db.models import QuerySet

from orders.models import Order
from orders.transitions import TRANSITIONS


def order_list_for_admin() -> QuerySet[Order]:
    return Order.objects.select_related("store", "customer")


def order_available_transitions(order: Order, user) -> list[str]:
    """Names of the transitions ``user`` may apply to ``order`` in its current status, in table order."""
    allowed = {t.name for t in order.get_available_user_status_transitions(user)}
    return [spec.name for spec in TRANSITIONS if spec.name in allowed]
