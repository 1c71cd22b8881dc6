"""Actions that change orders. ``order_transition`` is the one write path for ``Order.status``."""

from orders.services.shipping import order_ship
from orders.services.transitions import Move, order_create, order_transition, order_transitions_apply

__all__ = ["Move", "order_create", "order_ship", "order_transition", "order_transitions_apply"]
