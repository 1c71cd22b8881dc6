"""Automations' side of the seams: status entries start timers and entry rules, replies and failed
notifications run their rules. Timers are written in the status change's transaction; rules run
after commit, in a task, each in its own transaction."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django_fsm.signals import post_transition

from automations.models import Rule, Trigger
from automations.services.defaults import default_rules_create
from automations.services.engine import (
    status_entry_rules,
    timers_for_status_entry,
    timers_restart_shipment_stale,
)
from messaging.signals import customer_replied, notification_exhausted
from orders.models import Order, Store
from orders.signals import order_placed, shipment_reported


@receiver(post_transition, sender=Order, dispatch_uid="automations.on_status_entry")
def on_status_entry(sender, instance, name, source, target, **kwargs):
    _status_entered(instance)


@receiver(order_placed, dispatch_uid="automations.on_order_placed")
def on_order_placed(sender, order, **kwargs):
    _status_entered(order)


def _status_entered(order: Order) -> None:
    rules = status_entry_rules(order)
    timers_for_status_entry(order, rules)
    if any(rule.trigger == Trigger.ENTERED_STATUS for rule in rules):
        _run_after_commit(
            order.pk, Trigger.ENTERED_STATUS, f"entered:{order.status_version}", order.status_version
        )


@receiver(shipment_reported, dispatch_uid="automations.on_shipment_reported")
def on_shipment_reported(sender, order, **kwargs):
    timers_restart_shipment_stale(order)  # carrier news, even without a status change


@receiver(customer_replied, dispatch_uid="automations.on_customer_reply")
def on_customer_reply(sender, order, intent, inbound, **kwargs):
    if Rule.objects.filter(
        store_id=order.store_id, enabled=True, trigger=Trigger.REPLY_INTENT, intent=intent
    ).exists():
        _run_after_commit(order.pk, Trigger.REPLY_INTENT, f"reply:{inbound.pk}", None, intent=intent)


@receiver(notification_exhausted, dispatch_uid="automations.on_notification_exhausted")
def on_notification_exhausted(sender, notification, **kwargs):
    order = notification.order
    if Rule.objects.filter(
        store_id=order.store_id, enabled=True, trigger=Trigger.ALL_CHANNELS_FAILED
    ).exists():
        _run_after_commit(order.pk, Trigger.ALL_CHANNELS_FAILED, f"exhausted:{notification.pk}", None)


@receiver(post_save, sender=Store, dispatch_uid="automations.default_rules_for_new_store")
def default_rules_for_new_store(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        default_rules_create(instance)


def _run_after_commit(order_id: int, trigger: str, key: str, status_version: int | None, **match) -> None:
    from automations.tasks import rules_run_task

    transaction.on_commit(lambda: rules_run_task.delay(order_id, trigger, key, status_version, match))
