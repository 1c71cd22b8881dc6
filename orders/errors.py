"""Domain errors of the orders app. Their messages are written for the agent who sees them.

``str()`` is English whatever the active language (the API answers with it, logs record it);
``user_message()`` says the same in the active language, for Livra's pages.
"""

from django.utils import translation
from django.utils.translation import gettext
from django_fsm import ConcurrentTransition

from orders.transitions import TRANSITIONS_BY_NAME, OrderStatus


def _status_words(status: str) -> str:
    """An order status as a sentence says it ("awaiting confirmation"), in the active language."""
    return str(OrderStatus(status).label).lower() if status in OrderStatus.values else status


def _transition_words(name: str) -> str:
    """A transition as its button says it ("Mark shipped"), in the active language."""
    spec = TRANSITIONS_BY_NAME.get(name)
    return gettext(spec.label) if spec else name


def _status_words_in_english(status: str) -> str:
    with translation.override("en"):
        return _status_words(status)


class OrderTransitionError(Exception):
    """Base for every refusal of ``order_transition``; ``str()`` is safe to show to users."""

    def user_message(self) -> str:
        """The message in the active language (``str()`` stays English)."""
        return str(self)


class UnknownTransition(OrderTransitionError):
    def __init__(self, name: str):
        super().__init__(f"There is no order transition called “{name}”.")
        self.name = name

    def user_message(self) -> str:
        return gettext("There is no order transition called “%(name)s”.") % {"name": self.name}


class IllegalTransition(OrderTransitionError):
    def __init__(self, order, name: str, reason: str = ""):
        status = _status_words_in_english(order.status)
        message = f"Order {order.number} cannot “{name}” while it is {status}."
        super().__init__(f"{message} {reason}".strip())
        self.order_id = order.pk
        self.number = order.number
        self.status = order.status
        self.name = name
        self.reason = reason

    def user_message(self) -> str:
        message = gettext("Order %(number)s cannot “%(transition)s” while it is %(status)s.") % {
            "number": self.number,
            "transition": _transition_words(self.name),
            "status": _status_words(self.status),
        }
        return f"{message} {self.reason}".strip()


class TransitionPermissionDenied(OrderTransitionError):
    def __init__(self, user, name: str):
        super().__init__(f"You do not have permission to “{name}” orders.")
        self.user_id = getattr(user, "pk", None)
        self.name = name

    def user_message(self) -> str:
        return gettext("You do not have permission to “%(transition)s” orders.") % {
            "transition": _transition_words(self.name)
        }


class StaleOrderStatus(OrderTransitionError, ConcurrentTransition):
    """The caller acted on a status the order no longer has (e.g. an admin page left open)."""

    def __init__(self, order, expected: str):
        super().__init__(
            f"Order {order.number} changed to {_status_words_in_english(order.status)} since you loaded it "
            f"(you saw {expected}). Reload and try again."
        )
        self.order_id = order.pk
        self.number = order.number
        self.expected = expected
        self.actual = order.status

    def user_message(self) -> str:
        return gettext(
            "Order %(number)s changed to %(status)s since you loaded it (you saw %(expected)s). "
            "Reload and try again."
        ) % {
            "number": self.number,
            "status": _status_words(self.actual),
            "expected": _status_words(self.expected),
        }
