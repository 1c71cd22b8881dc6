"""Rule conditions: a small tree of AND/OR over facts about the order, checked without side effects.

    {"all": [{"field": "payment_method", "op": "eq", "value": "cod"},
             {"any": [{"field": "city", "op": "in", "value": ["Casablanca", "Rabat"]},
                      {"field": "total_amount", "op": "gte", "value": "500"}]}]}

An empty tree ({}) always holds.
"""

from datetime import time
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.translation import gettext

from messaging.events import CUSTOMER_EVENTS
from messaging.models import Channel, Notification
from orders.models import Order
from orders.transitions import OrderStatus, PaymentMethod

RETURNED = (OrderStatus.RTO_INITIATED, OrderStatus.RETURNED)

# field → the operators it takes
FIELDS: dict[str, tuple[str, ...]] = {
    "payment_method": ("eq", "ne"),
    "total_amount": ("gte", "lte", "between"),
    "city": ("eq", "ne", "in"),
    "tag": ("has", "lacks"),
    "first_order": ("eq",),
    "past_returns": ("gte", "lte"),
    "consent": ("has", "lacks"),  # value: a channel the customer opted in on
    "time_of_day": ("between",),  # value: ["21:00", "09:00"] in the store's time zone
    "payment_link": ("set", "unset"),  # the store has a payment page (no value)
    "status": ("eq", "ne", "in"),  # the order's status now
    "told": ("has", "lacks"),  # value: an event the customer was (or was not) sent about the order
}


class InvalidCondition(ValueError):
    pass


def condition_problems(tree) -> list[str]:
    """Why ``tree`` is not a valid condition tree (empty when it is)."""
    try:
        _walk(tree, None, check_only=True)
    except InvalidCondition as exc:
        return [str(exc)]
    return []


def conditions_hold(tree, order: Order, now=None) -> bool:
    return _walk(tree, _Facts(order, now or timezone.now()), check_only=False)


def _walk(tree, facts, *, check_only: bool) -> bool:
    if tree in (None, {}):
        return True
    if not isinstance(tree, dict):
        raise InvalidCondition(gettext("a condition is an object"))
    if "all" in tree or "any" in tree:
        combine = "all" if "all" in tree else "any"
        parts = tree[combine]
        if not isinstance(parts, list) or not parts:
            raise InvalidCondition(gettext("'%(combine)s' takes a non-empty list") % {"combine": combine})
        results = [_walk(part, facts, check_only=check_only) for part in parts]
        return all(results) if combine == "all" else any(results)
    field, op, value = tree.get("field"), tree.get("op"), tree.get("value")
    if field not in FIELDS:
        raise InvalidCondition(
            gettext("unknown field %(field)r (one of %(fields)s)")
            % {"field": field, "fields": ", ".join(FIELDS)}
        )
    if op not in FIELDS[field]:
        raise InvalidCondition(
            gettext("%(field)s takes %(ops)s, not %(op)r")
            % {"field": field, "ops": ", ".join(FIELDS[field]), "op": op}
        )
    _check_value(field, op, value)
    return True if check_only else facts.test(field, op, value)


def _check_value(field: str, op: str, value) -> None:
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2):
            raise InvalidCondition(gettext("%(field)s between takes [low, high]") % {"field": field})
        for part in value:
            _scalar(field, part)
    elif field == "payment_link":
        return
    elif op == "in":
        if not (isinstance(value, list) and value):
            raise InvalidCondition(gettext("%(field)s in takes a non-empty list") % {"field": field})
        if field == "status":
            for part in value:
                _scalar(field, part)
    else:
        _scalar(field, value)


def _scalar(field: str, value):
    try:
        if field == "total_amount":
            return Decimal(str(value))
        if field == "past_returns":
            return int(value)
        if field == "time_of_day":
            return time.fromisoformat(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidCondition(
            gettext("%(field)s: %(value)r is not a valid value") % {"field": field, "value": value}
        ) from None
    if field == "first_order" and not isinstance(value, bool):
        raise InvalidCondition(gettext("first_order takes true or false"))
    if field == "payment_method" and value not in PaymentMethod.values:
        raise InvalidCondition(
            gettext("payment_method is one of %(methods)s") % {"methods": ", ".join(PaymentMethod.values)}
        )
    if field == "consent" and value not in Channel.values:
        raise InvalidCondition(
            gettext("consent is on one of %(channels)s") % {"channels": ", ".join(Channel.values)}
        )
    if field == "status" and value not in OrderStatus.values:
        raise InvalidCondition(
            gettext("status %(value)r is not one of %(statuses)s")
            % {"value": value, "statuses": ", ".join(OrderStatus.values)}
        )
    if field == "told" and value not in CUSTOMER_EVENTS:
        raise InvalidCondition(
            gettext("told: %(value)r is not an event customers are told") % {"value": value}
        )
    return value


class _Facts:
    """Facts about one order, each read once when a condition asks for it."""

    def __init__(self, order: Order, now):
        self.order, self.now = order, now

    def test(self, field: str, op: str, value) -> bool:
        order = self.order
        if field == "payment_method":
            return (order.payment_method == value) == (op == "eq")
        if field == "total_amount":
            low, high = value if op == "between" else (value, value)
            low, high = Decimal(str(low)), Decimal(str(high))
            return {"gte": order.total_amount >= low, "lte": order.total_amount <= high}.get(
                op, low <= order.total_amount <= high
            )
        if field == "city":
            city = order.shipping_city.strip().casefold()
            if op == "in":
                return city in {str(v).strip().casefold() for v in value}
            return (city == str(value).strip().casefold()) == (op == "eq")
        if field == "tag":
            return (value in (order.tags or [])) == (op == "has")
        if field == "first_order":
            first = not Order.objects.filter(
                customer_id=order.customer_id, placed_at__lt=order.placed_at
            ).exists()
            return first == value
        if field == "past_returns":
            returns = (
                Order.objects.filter(customer_id=order.customer_id, status__in=RETURNED)
                .exclude(pk=order.pk)
                .count()
            )
            return returns >= int(value) if op == "gte" else returns <= int(value)
        if field == "consent":
            opted_in = order.customer.consents.filter(channel=value, status="opted_in").exists()
            return opted_in == (op == "has")
        if field == "time_of_day":
            start, end = (time.fromisoformat(str(v)) for v in value)
            local = self.now.astimezone(order.store.time_zone).time()
            return (start <= local < end) if start <= end else (local >= start or local < end)
        if field == "payment_link":
            return bool(order.store.payment_link_url) == (op == "set")
        if field == "status":
            if op == "in":
                return order.status in value
            return (order.status == value) == (op == "eq")
        if field == "told":
            told = Notification.objects.filter(order=order, event=value).exists()
            return told == (op == "has")
        raise InvalidCondition(field)
