"""Messaging's side of the seam: order status changes become outbox rows."""

from django.dispatch import receiver
from django_fsm.signals import post_transition

from messaging.services import message_enqueue_for_status_change
from orders.models import Order


@receiver(post_transition, sender=Order, dispatch_uid="messaging.enqueue_on_order_transition")
def enqueue_message_on_order_transition(sender, instance, name, source, target, **kwargs):
    # django-fsm fires this inside order_transition's atomic block, before the save: the
    # outbox row commits or rolls back with the status change.
    message_enqueue_for_status_change(instance, transition_name=name, target=target)
