"""What the API reads, always scoped to the stores the user is a member of (superusers: all).

Reading messaging's rows here is a read, not a dependency of the orders domain on messaging:
orders' services never import messaging; only this read side of the API does.
"""

from django.db.models import Prefetch, QuerySet

from messaging.models import Message
from orders.models import Customer, Order, OrderEvent
from orders.selectors import store_list_for_user


def order_list_for_user(user) -> QuerySet[Order]:
    """The user's orders, newest first, with what the list shows (no query per order)."""
    return (
        Order.objects.filter(store__in=store_list_for_user(user))
        .select_related("store", "customer")
        .prefetch_related("items")
        .order_by("-placed_at", "-id")
    )


def order_detail_for_user(user) -> QuerySet[Order]:
    """As the list, plus the timeline (with each event's actor) and the customer's consents."""
    return order_list_for_user(user).prefetch_related(
        Prefetch("events", queryset=OrderEvent.objects.select_related("actor").order_by("created_at", "id")),
        "customer__consents",
    )


def order_messages(order: Order) -> QuerySet[Message]:
    """Every message sent (or tried) about ``order``, oldest first: its side of the timeline."""
    return Message.objects.filter(order=order).order_by("created_at", "id")


def message_list_for_user(user) -> QuerySet[Message]:
    return Message.objects.filter(order__store__in=store_list_for_user(user)).order_by("-created_at", "-id")


def customer_list_for_user(user) -> QuerySet[Customer]:
    return Customer.objects.filter(store__in=store_list_for_user(user))


def phone_regions_for_user(user) -> list[str]:
    """The default phone regions of the user's stores, to read a local number typed in a search."""
    regions = store_list_for_user(user).order_by().values_list("default_phone_region", flat=True)
    return sorted(set(regions))
