"""WhatsApp's customer-service window: free-form messages only within 24 h of the customer's last one.

Meta opens (or refreshes) the window each time the customer writes to the business; outside it only
an approved template may go, and anything else is refused with error 131047. We count the window
from when we received the customer's message, which is never earlier than when they sent it, so a
window we believe open can at worst have closed a few seconds ago (Meta then answers 131047 and the
notification falls back).
"""

from datetime import datetime, timedelta

from django.utils import timezone

from messaging.models import Channel, InboundMessage

WINDOW = timedelta(hours=24)


def whatsapp_window_open(customer, now: datetime | None = None) -> bool:
    """Did ``customer`` write to us on WhatsApp within the last 24 hours?"""
    if customer is None or customer.pk is None:
        return False
    now = now or timezone.now()
    return InboundMessage.objects.filter(
        customer=customer, channel=Channel.WHATSAPP, received_at__gt=now - WINDOW
    ).exists()
