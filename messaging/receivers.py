"""Messaging's side of the seam: order status changes become notifications in the outbox."""

from django.dispatch import receiver
from django_fsm.signals import post_transition

from messaging.services.outbox import notification_create_for_status_change
from orders.models import Order


@receiver(post_transition, sender=Order, dispatch_uid="messaging.notify_on_order_transition")
def notify_customer_on_order_transition(sender, instance, name, source, target, **kwargs):
    # django-fsm fires this inside order_transition's atomic block, before the save: the
    # outbox rows commit or roll back with the status change.
    notification_create_for_status_change(instance, transition_name=name)
