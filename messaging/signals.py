"""What messaging tells the apps above it (automations), inside the transaction that learnt it.

- ``customer_replied``: a customer wrote about an order (``order``, ``intent``: "confirm",
  "cancel" or "unclear", ``inbound``, ``late``: True when the order no longer awaited an answer —
  a confirm or cancel then changed nothing). Sent inside the reply's transaction; each receiver
  returns what it did about it, a line per thing done (the reply's ``outcome``).
- ``notification_exhausted``: every channel failed for a notification (``notification``).
"""

from django.dispatch import Signal

customer_replied = Signal()
notification_exhausted = Signal()
