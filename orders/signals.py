"""What orders tells the other apps, inside the transaction that learnt it (orders never imports them).

- ``consent_claimed``: a store said at checkout whether the customer wants messages on a channel
  (``customer``, ``claim``: a ``ConsentClaim``, ``evidence``: dict). Messaging records it.
- ``status_entered``: the order entered its current status (``order``, ``event``: the
  ``OrderEvent`` that says so), sent once the status and its event are written, still inside the
  change's transaction: a new order at ``placed`` (``order_create``) and every status change
  (``order_transition``). Automations starts the status's timers and runs its rules there, so what
  they write (the customer's outbox rows too) commits or rolls back with the change.
- ``shipment_reported``: a store (or carrier) reported a parcel for an order (``order``,
  ``shipment``: an ``IncomingShipment``, ``source``). Carriers records it.
"""

from django.dispatch import Signal

consent_claimed = Signal()
status_entered = Signal()
shipment_reported = Signal()
