"""What orders tells the other apps, inside the transaction that learnt it (orders never imports them).

- ``consent_claimed``: a store said at checkout whether the customer wants messages on a channel
  (``customer``, ``claim``: a ``ConsentClaim``, ``evidence``: dict). Messaging records it.
- ``status_entered``: orders entered their current status (``entries``: a list of (``order``,
  ``event``), the ``OrderEvent`` that says so), sent once the statuses and their events are written,
  still inside the change's transaction: a new order at ``placed`` (``order_create``), every
  status change (``order_transition``: one entry) and a batch of them (``order_transitions_apply``:
  one entry per order). Automations starts the statuses' timers and runs their rules there, for
  the whole batch at once, so what they write (the customer's outbox rows too) commits or rolls
  back with the change.
- ``shipment_reported``: a store (or carrier) reported a parcel for an order (``order``,
  ``shipment``: an ``IncomingShipment``, ``source``). Carriers records it.
"""

from django.dispatch import Signal

consent_claimed = Signal()
status_entered = Signal()
shipment_reported = Signal()
