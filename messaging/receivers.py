"""Messaging's side of the orders signals: consent a store reports at checkout.

What a status change tells the customer is the store's rules' decision: automations runs them on
``orders.signals.status_entered`` and they write the outbox rows through ``notification_create``
in the status change's transaction (``automations/receivers.py``).
"""

from django.dispatch import receiver

from messaging.services.consent import consent_record_store_claim
from orders.signals import consent_claimed


@receiver(consent_claimed, dispatch_uid="messaging.record_consent_claimed_at_checkout")
def record_consent_claimed_at_checkout(sender, customer, claim, evidence, **kwargs):
    """A store said at checkout whether the customer wants marketing on a channel: record it, with
    the field it came from, unless the customer's consent already says exactly that."""
    consent_record_store_claim(
        customer, claim.channel, claim.subscribed, evidence={**evidence, claim.field: claim.value}
    )
