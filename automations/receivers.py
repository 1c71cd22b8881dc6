"""Automations' side of the seams: status entries close settled queue entries, start timers and
run the store's entry rules; replies and failed notifications run their rules.

A status entry (``orders.signals.status_entered``, sent once the status and its event are written,
inside the change's transaction) closes the order's queue entry if the change settles it, starts
the status's timers and runs its entry rules right there: what they write, the customer's outbox
rows too, commits or rolls back with the status change (the one seam, architecture.md), and a rule
may move the order on again (a new COD order is asked to confirm). A customer's reply runs its
rules the same way, inside the reply's transaction, so the answer is written with the reply;
exhausted notifications run theirs after commit, in a task (in the process that
committed when the broker is away).
"""

import logging
import threading

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from automations.models import Rule, Trigger
from automations.services.defaults import default_rules_create
from automations.services.engine import (
    entry_rules_run_many,
    rules_run,
    rules_run_for_event,
    status_entry_rules_for,
    timers_for_status_entries,
    timers_restart_shipment_stale,
    timers_restart_shipment_stale_for,
)
from automations.services.queue import queue_entries_close_settled
from carriers.signals import parcel_news
from config.celery import task_publish
from messaging.signals import customer_replied, notification_exhausted
from orders.models import Order, OrderEvent, Store
from orders.signals import shipment_reported, status_entered

logger = logging.getLogger(__name__)

# Entry rules that move the order on nest: a store whose rules go round in a circle (out for
# delivery → fail → reschedule → out for delivery …) is stopped here rather than looping.
MAX_RULE_CHAIN = 6
_chain = threading.local()


@receiver(status_entered, sender=Order, dispatch_uid="automations.on_status_entered")
def on_status_entered(sender, entries, **kwargs):
    """One order's status entry, or a batch of them (``order_transitions_apply``): the batch's
    queue entries, rules and timers are read and written together, a few statements for all."""
    orders = [order for order, _ in entries]
    queue_entries_close_settled(entries)
    rules_of = status_entry_rules_for(orders)
    timers_for_status_entries(orders, rules_of)
    entering = [
        (order, entry)
        for order in orders
        if (entry := [rule for rule in rules_of[order.pk] if rule.trigger == Trigger.ENTERED_STATUS])
    ]
    if not entering:
        return
    depth = getattr(_chain, "depth", 0)
    if depth >= MAX_RULE_CHAIN:
        logger.warning(
            "entry rules not run: %s status changes in a row order_ids=%s",
            depth,
            [order.pk for order in orders],
        )
        OrderEvent.objects.bulk_create(
            OrderEvent(
                order=order,
                type="automation_stopped",
                source=OrderEvent.Source.AUTOMATION,
                reason=f"the store's rules moved this order {depth} times in a row: its {order.status} "
                "rules were not run (do some rules undo each other?)",
            )
            for order, _ in entering
        )
        return
    _chain.depth = depth + 1
    try:
        entry_rules_run_many(entering)
    finally:
        _chain.depth = depth


@receiver(shipment_reported, dispatch_uid="automations.on_shipment_reported")
def on_shipment_reported(sender, order, **kwargs):
    timers_restart_shipment_stale(order)  # carrier news, even without a status change


@receiver(parcel_news, dispatch_uid="automations.on_parcel_news")
def on_parcel_news(sender, order_ids, **kwargs):
    timers_restart_shipment_stale_for(order_ids)  # tracking events, pushed or polled


@receiver(customer_replied, dispatch_uid="automations.on_customer_reply")
def on_customer_reply(sender, order, intent, inbound, late=False, **kwargs) -> list[str]:
    """Run the reply's rules in the reply's transaction (a savepoint: a rule that fails leaves the
    reply recorded, for an agent); what they did, a line per action, for the reply's record."""
    trigger = Trigger.LATE_REPLY if late else Trigger.REPLY_INTENT
    planned = rules_run(order.pk, trigger, key=f"reply:{inbound.pk}", intent=intent)
    return [f"rule {plan.rule.name!r}: {line}" for plan in planned for line in plan.lines]


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

    def run() -> None:
        if not task_publish(rules_run_task, order_id, trigger, key, status_version, match):
            # No sweep looks for these events later: with the broker away the rules run here, in
            # their own short transaction, rather than never. Should the broker have taken the
            # task after all (its answer lost), the run is repeated: notifications and moves are
            # keyed and happen once, a team alert may be posted twice.
            rules_run_for_event(order_id, trigger, key=key, status_version=status_version, **match)

    transaction.on_commit(run)
