"""What orders tells the other apps, inside the transaction that learnt it (orders never imports them).

- ``consent_claimed``: a store said at checkout whether the customer wants messages on a channel
  (``customer``, ``claim``: a ``ConsentClaim``, ``evidence``: dict). Messaging records it.
- ``order_placed``: a new order was saved at ``placed`` (``order``); automations starts its rules.
- ``shipment_reported``: a store (or carrier) reported a parcel for an order (``order``,
  ``shipment``: an ``IncomingShipment``, ``source``). Carriers records it.
"""

from django.dispatch import Signal

consent_claimed = Signal()
order_placed = Signal()
shipment_reported = Signal()
