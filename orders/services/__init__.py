"""Actions that change orders. ``order_transition`` is the one write path for ``Order.status``."""

from orders.services.shipping import order_ship
from orders.services.transitions import order_create, order_transition

__all__ = ["order_create", "order_ship", "order_transition"]
