"""Read-only queries about orders."""

from django.db.models import QuerySet

from orders.models import Order, Store
from orders.transitions import TRANSITIONS


def store_list_for_user(user) -> QuerySet[Store]:
    """The stores ``user`` is a member of (superusers: every store): what the API and admin show."""
    if not user.is_authenticated:  # never reached through the API's views; the schema asks anonymously
        return Store.objects.none()
    if user.is_superuser:
        return Store.objects.all()
    return Store.objects.filter(members=user)


def order_list_for_admin() -> QuerySet[Order]:
    return Order.objects.select_related("store", "customer")


def order_available_transitions(order: Order, user) -> list[str]:
    """Names of the transitions ``user`` may apply to ``order`` in its current status, in table order."""
    allowed = {t.name for t in order.get_available_user_status_transitions(user)}
    return [spec.name for spec in TRANSITIONS if spec.name in allowed]
