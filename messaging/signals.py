"""What messaging tells the apps above it (automations), inside the transaction that learnt it.

- ``customer_replied``: a customer answered about an order awaiting their answer (``order``,
  ``intent``: "confirm", "cancel" or "unclear", ``inbound``).
- ``notification_exhausted``: every channel failed for a notification (``notification``).
"""

from django.dispatch import Signal

customer_replied = Signal()
notification_exhausted = Signal()
