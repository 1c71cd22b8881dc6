"""Messaging's side of the seam: order status changes become notifications in the outbox."""

from django.dispatch import receiver
from django_fsm.signals import post_transition

from messaging.services.consent import consent_record_store_claim
from messaging.services.outbox import notification_create_for_status_change
from orders.models import Order
from orders.signals import consent_claimed


@receiver(post_transition, sender=Order, dispatch_uid="messaging.notify_on_order_transition")
def notify_customer_on_order_transition(sender, instance, name, source, target, **kwargs):
    # django-fsm fires this inside order_transition's atomic block, before the save: the
    # outbox rows commit or roll back with the status change.
    notification_create_for_status_change(instance, transition_name=name)


@receiver(consent_claimed, dispatch_uid="messaging.record_consent_claimed_at_checkout")
def record_consent_claimed_at_checkout(sender, customer, claim, evidence, **kwargs):
    """A store said at checkout whether the customer wants marketing on a channel: record it, with
    the field it came from, unless the customer's consent already says exactly that."""
    consent_record_store_claim(
        customer, claim.channel, claim.subscribed, evidence={**evidence, claim.field: claim.value}
    )
