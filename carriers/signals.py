"""What carriers tells the other apps (carriers never imports them).

- ``parcel_news``: new carrier reports were kept for these orders' parcels (``order_ids``: a set),
  applied or not, inside the transaction that kept them when there is one. Automations restarts
  the "no carrier news" waits there.
"""

from django.dispatch import Signal

parcel_news = Signal()
