"""Running a store's rules for one order and one trigger, or planning what they would do."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext

from automations.models import Rule, Timer, Trigger
from automations.services.actions import action_apply_many, action_problems
from automations.services.conditions import condition_problems, conditions_hold
from orders.models import Order
from orders.transitions import IN_FLIGHT

logger = logging.getLogger(__name__)
TIMER_TRIGGERS = (Trigger.IN_STATUS_FOR, Trigger.SHIPMENT_STALE)
REPLY_TRIGGERS = (Trigger.REPLY_INTENT, Trigger.LATE_REPLY)
REPLY_INTENTS = ("confirm", "cancel", "unclear")


@dataclass(frozen=True)
class Planned:
    rule: Rule
    lines: tuple[str, ...]


def rule_problems(rule: Rule) -> list[str]:
    """Why ``rule`` cannot be saved (empty when it can)."""
    problems = []
    if rule.trigger in (Trigger.ENTERED_STATUS, Trigger.IN_STATUS_FOR) and not rule.status:
        problems.append(gettext("this trigger needs a status"))
    if rule.trigger in TIMER_TRIGGERS and not rule.delay_minutes:
        problems.append(gettext("this trigger needs a delay in minutes"))
    if rule.trigger in REPLY_TRIGGERS and rule.intent not in REPLY_INTENTS:
        problems.append(gettext("a reply rule needs the intent: confirm, cancel or unclear"))
    problems += condition_problems(rule.conditions)
    if not isinstance(rule.actions, list) or not rule.actions:
        problems.append(gettext("a rule needs at least one action"))
    else:
        for action in rule.actions:
            problems += action_problems(rule, action)
    return problems


def rules_for(order: Order, trigger: str, **match) -> list[Rule]:
    rules = Rule.objects.filter(store_id=order.store_id, enabled=True, trigger=trigger, **match)
    return list(rules.order_by("position", "pk"))


def rules_run(
    order_id: int,
    trigger: str,
    *,
    key: str,
    dry_run: bool = False,
    status_version: int | None = None,
    **match,
) -> list[Planned]:
    """Run (or, with ``dry_run``, plan) the store's enabled rules for ``trigger`` on the order, in
    one transaction holding the order's lock. ``key`` makes every action idempotent."""
    with transaction.atomic():
        locked = Order.objects.select_for_update(of=("self",)).select_related("store", "customer")
        order = locked.get(pk=order_id)
        if status_version is not None and order.status_version != status_version:
            return []  # the order has moved on since the event: its rules have nothing to act on
        if trigger == Trigger.ENTERED_STATUS:
            match["status"] = order.status
        rules = rules_for(order, trigger, **match)
        planned = [rule_run(rule, order, key=key, dry_run=dry_run) for rule in rules]
        if dry_run:
            transaction.set_rollback(True)  # whatever a condition read, nothing is kept
    return [plan for plan in planned if plan.lines]


def rules_run_for_event(
    order_id: int, trigger: str, *, key: str, status_version: int | None = None, **match
) -> list[Planned]:
    """Run the rules of an event that happened to the order (after its commit, in a task).

    ``status_version``: for a status entry, the order's at that entry; if the order has moved on
    since, the entry's rules have nothing left to act on.
    """
    return rules_run(order_id, trigger, key=key, status_version=status_version, **match)


def entry_rules_run_many(entering: list[tuple[Order, list[Rule]]]) -> dict[int, list[Planned]]:
    """Run each order's status entry ``rules`` on it, in the caller's transaction (which holds the
    orders' locks): per order in the rules' order, and once one of them has moved the order on,
    the rest have nothing left to act on. A rule shared by many of the orders (a batch of one
    store's orders entering one status) runs once for all of them (``rule_run_many``). The plans
    that did something, by order id."""
    entered = {order.pk: order.status_version for order, _ in entering}
    keys = {order.pk: f"order:{order.pk}:entered:{order.status_version}" for order, _ in entering}
    orders_of: dict[int, list[Order]] = {}
    rules: dict[int, Rule] = {}
    for order, order_rules in entering:
        for rule in order_rules:
            rules[rule.pk] = rule
            orders_of.setdefault(rule.pk, []).append(order)
    planned: dict[int, list[Planned]] = {order.pk: [] for order, _ in entering}
    for rule in sorted(rules.values(), key=lambda rule: (rule.position, rule.pk)):
        # Unique per order and status entry: notifications' idempotency keys are global.
        still = [order for order in orders_of[rule.pk] if order.status_version == entered[order.pk]]
        if not still:
            continue
        plans = rule_run_many(rule, still, keys=[keys[order.pk] for order in still])
        for order, plan in zip(still, plans, strict=True):
            if plan.lines:
                planned[order.pk].append(plan)
    return planned


def rule_run(rule: Rule, order: Order, *, key: str, dry_run: bool = False, now=None) -> Planned:
    return rule_run_many(rule, [order], keys=[key], dry_run=dry_run, now=now)[0]


def rule_run_many(
    rule: Rule, orders: list[Order], *, keys: list[str], dry_run: bool = False, now=None
) -> list[Planned]:
    """``rule`` on each of ``orders`` (locked by the caller), a plan per order: the orders whose
    conditions hold get each action in turn (row-only actions set-based, see action_apply_many)."""
    held = [i for i, order in enumerate(orders) if conditions_hold(rule.conditions, order, now)]
    lines: dict[int, list[str]] = {i: [] for i in held}
    rule_keys = [f"rule:{rule.pk}:v{rule.version}:{keys[i]}" for i in held]
    for action in rule.actions:
        done = action_apply_many(rule, action, [orders[i] for i in held], keys=rule_keys, dry_run=dry_run)
        for i, line in zip(held, done, strict=True):
            lines[i].append(line)
    if not dry_run:
        for i in held:
            logger.info("rule fired rule_id=%s version=%s order_id=%s", rule.pk, rule.version, orders[i].pk)
    return [Planned(rule, tuple(lines.get(i, ()))) for i in range(len(orders))]


# --- timers --------------------------------------------------------------------------------------
def status_entry_rules(order: Order) -> list[Rule]:
    return status_entry_rules_for([order])[order.pk]


def status_entry_rules_for(orders: list[Order]) -> dict[int, list[Rule]]:
    """The store's enabled rules each order entering its current status concerns, in one query
    for them all: the entry rules and the timers' rules of that status, and the carrier-news waits
    in flight. By order id."""
    concerned = Q(
        trigger__in=(Trigger.ENTERED_STATUS, Trigger.IN_STATUS_FOR),
        status__in={order.status for order in orders},
    )
    if any(order.status in IN_FLIGHT for order in orders):
        concerned |= Q(trigger=Trigger.SHIPMENT_STALE)
    stores = {order.store_id for order in orders}
    rules = list(Rule.objects.filter(concerned, store_id__in=stores, enabled=True))
    return {order.pk: [rule for rule in rules if _concerns(rule, order)] for order in orders}


def _concerns(rule: Rule, order: Order) -> bool:
    if rule.store_id != order.store_id:
        return False
    if rule.trigger == Trigger.SHIPMENT_STALE:
        return order.status in IN_FLIGHT
    return rule.status == order.status


def timers_for_status_entry(order: Order, rules: list[Rule]) -> None:
    timers_for_status_entries([order], {order.pk: rules})


def timers_for_status_entries(orders: list[Order], rules_of: dict[int, list[Rule]]) -> None:
    """The orders just entered their statuses (inside the transitions' transaction): start the
    timers of their rules that wait (``status_entry_rules_for``), and let every timer of the
    statuses they left die. Two statements, however many orders."""
    Timer.objects.filter(order__in=[order.pk for order in orders], state=Timer.State.PENDING).exclude(
        status_version=F("order__status_version")
    ).update(state=Timer.State.DEAD, outcome="the order moved on")
    now = timezone.now()
    Timer.objects.bulk_create(
        [
            Timer(
                order=order,
                rule=rule,
                status=order.status,
                status_version=order.status_version,
                due_at=now + timedelta(minutes=rule.delay_minutes),
            )
            for order in orders
            for rule in rules_of[order.pk]
            if rule.trigger in TIMER_TRIGGERS
        ],
        ignore_conflicts=True,  # a replayed status entry keeps its timers
    )


def timers_restart_shipment_stale(order: Order) -> None:
    """News about the parcel arrived: the "no carrier news" waits start again from now."""
    timers_restart_shipment_stale_for({order.pk})


def timers_restart_shipment_stale_for(order_ids) -> int:
    """``timers_restart_shipment_stale`` for many orders at once (a carrier's batch of news): one
    read and one write, however many timers. Returns how many waits started again. (Not a single
    UPDATE with the rule's delay in SQL: SQLite, the demo's database, cannot multiply a duration.)"""
    now = timezone.now()
    pending = list(
        Timer.objects.filter(
            order_id__in=list(order_ids), state=Timer.State.PENDING, rule__trigger=Trigger.SHIPMENT_STALE
        ).select_related("rule")
    )
    for timer in pending:
        timer.due_at = now + timedelta(minutes=timer.rule.delay_minutes)
    Timer.objects.bulk_update(pending, ["due_at"])
    return len(pending)
