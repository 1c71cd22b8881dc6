"""Domain errors of the orders app. Their messages are written for the agent who sees them."""

from django_fsm import ConcurrentTransition


class OrderTransitionError(Exception):
    """Base for every refusal of ``order_transition``; ``str()`` is safe to show to users."""


class UnknownTransition(OrderTransitionError):
    def __init__(self, name: str):
        super().__init__(f"There is no order transition called “{name}”.")
        self.name = name


class IllegalTransition(OrderTransitionError):
    def __init__(self, order, name: str, reason: str = ""):
        message = f"Order {order.number} cannot “{name}” while it is {order.get_status_display().lower()}."
        super().__init__(f"{message} {reason}".strip())
        self.order_id = order.pk
        self.status = order.status
        self.name = name


class TransitionPermissionDenied(OrderTransitionError):
    def __init__(self, user, name: str):
        super().__init__(f"You do not have permission to “{name}” orders.")
        self.user_id = getattr(user, "pk", None)
        self.name = name


class StaleOrderStatus(OrderTransitionError, ConcurrentTransition):
    """The caller acted on a status the order no longer has (e.g. an admin page left open)."""

    def __init__(self, order, expected: str):
        super().__init__(
            f"Order {order.number} changed to {order.get_status_display().lower()} since you loaded it "
            f"(you saw {expected}). Reload and try again."
        )
        self.order_id = order.pk
        self.expected = expected
        self.actual = order.status
