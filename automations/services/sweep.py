"""The timer sweep (celery-beat, every minute): fire due timers once.

A batch of due timers is claimed in one short transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so two sweeps never claim one timer) and the timers whose order moved on are retired
set-based. Then:

- timers whose rule only writes rows of its own (queue, tag, team alert: ``BATCHED`` actions) fire
  together, in one short transaction per batch that locks their orders in id order and acts with a
  few set-based statements. If anything in it fails, it is rolled back whole and those timers fire
  one by one instead, so one bad order still cannot hold the others back.
- timers whose rule changes the order's status or tells the customer fire each order in its own
  short transaction through the services (the same ``timers_fire``, with one timer).

A claimed timer that a crashed sweep never finished is claimed again after ``FIRING_LEASE`` (every
action is idempotent by its key, and a batch that died left nothing behind).
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from automations.models import Rule, SweepRun, Timer
from automations.services.actions import BATCHED
from automations.services.claims import ids_claim
from automations.services.engine import rule_run_many
from orders.models import Order, Store

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
FIRING_LEASE = timedelta(minutes=10)


def timers_sweep(batch_size: int = BATCH_SIZE) -> SweepRun:
    now = timezone.now()
    run = SweepRun.objects.create(started_at=now)
    errors = []
    try:
        _sweep_batches(run, now, batch_size, errors)
    finally:
        run.finished_at = timezone.now()
        run.error_text = "\n".join(errors)[:10000]
        run.save()
    logger.info("timer sweep fired=%s skipped=%s errors=%s", run.fired, run.skipped, run.errors)
    return run


def _sweep_batches(run: SweepRun, now, batch_size: int, errors: list[str]) -> None:
    rules: dict[int, Rule] = {}
    while claimed := _claim(now, batch_size):
        to_fire, retired = _retire_moved_on(claimed)
        run.skipped += retired
        _rules_read(rules, {rule_id for _, rule_id in to_fire})
        together, one_by_one = [], []
        for pk, rule_id in to_fire:
            (together if _fires_together(rules.get(rule_id)) else one_by_one).append(pk)
        if together:
            try:
                fired, skipped = timers_fire(together, now, rules)
                run.fired, run.skipped = run.fired + fired, run.skipped + skipped
            except Exception:  # rolled back whole: fire them one by one, each failing on its own
                logger.exception("timer batch failed; firing its %s timers one by one", len(together))
                one_by_one += together
        for timer_id in one_by_one:
            try:
                fired, skipped = timers_fire([timer_id], now, rules)
                run.fired, run.skipped = run.fired + fired, run.skipped + skipped
            except Exception as exc:  # one order's failure must not stop the others
                logger.exception("timer failed timer_id=%s", timer_id)
                Timer.objects.filter(pk=timer_id).update(state=Timer.State.FAILED, outcome=repr(exc)[:2000])
                run.errors += 1
                errors.append(f"timer {timer_id}: {exc!r}")
        if len(claimed) < batch_size:
            break


def _rules_read(rules: dict[int, Rule], wanted: set[int]) -> None:
    """The sweep reads each rule once (a rule edited meanwhile fires as such from the next sweep)."""
    if missing := wanted - rules.keys():
        rules.update(Rule.objects.in_bulk(missing))


def _fires_together(rule: Rule | None) -> bool:
    if rule is None:  # deleted since the claim, its timers with it: nothing is left to fire
        return False
    return not rule.enabled or all(action.get("type") in BATCHED for action in rule.actions)


def _claim(now, batch_size: int) -> list[int]:
    """Take up to ``batch_size`` due timers (oldest first) for this sweep; their ids.

    Two index-backed lookups, not one with OR (which the planner answers with a scan of the whole
    table): due pending timers (index ``timer_pending_due``), then, in the room left, timers a
    crashed sweep claimed and never finished (index ``timer_firing_since``; nearly always none).
    """
    due = Timer.objects.filter(state=Timer.State.PENDING, due_at__lte=now).order_by("due_at")
    abandoned = Timer.objects.filter(state=Timer.State.FIRING, fired_at__lt=now - FIRING_LEASE).order_by(
        "fired_at"
    )
    with transaction.atomic():
        ids = ids_claim((due, abandoned), batch_size)
        Timer.objects.filter(pk__in=ids).update(state=Timer.State.FIRING, fired_at=now)
    return ids


def _retire_moved_on(timer_ids: list[int]) -> tuple[list[tuple[int, int]], int]:
    """Timers whose order left the status they wait in: dead, set-based, nothing fired. Returns
    the timers still to fire (id, rule id) and how many were retired."""
    current = Order.objects.filter(pk=OuterRef("order_id")).values("status_version")[:1]
    rows = list(
        Timer.objects.filter(pk__in=timer_ids)
        .annotate(current=Subquery(current))
        .values_list("pk", "rule_id", "status_version", "current")
    )
    moved_on = [pk for pk, _, waited_in, now_in in rows if waited_in != now_in]
    Timer.objects.filter(pk__in=moved_on).update(state=Timer.State.DEAD, outcome="the order moved on")
    return [(pk, rule_id) for pk, rule_id, waited_in, now_in in rows if waited_in == now_in], len(moved_on)


def timers_fire(timer_ids: list[int], now, rules: dict[int, Rule]) -> tuple[int, int]:
    """Run the timers' rules for their orders, in one transaction; (fired, skipped).

    A batch of timers whose rules only write rows of their own, or a single timer whose rule
    changes the status or tells the customer (through the services). The timers and their orders
    are locked in one statement, in order id order (two sweeps, or a sweep and a status change,
    always take the orders' locks in the same order). A timer another sweep finished is left alone;
    an order that moved on since the claim fires nothing. ``rules``: the sweep's rules by id.
    """
    with transaction.atomic():
        timers = list(
            Timer.objects.filter(pk__in=timer_ids, state=Timer.State.FIRING)
            .select_related("order")
            .select_for_update(of=("self", "order"))
            .order_by("order_id", "pk")
        )
        stores = Store.objects.in_bulk({timer.order.store_id for timer in timers})
        by_rule: dict[int, list[Timer]] = {}
        for timer in timers:
            timer.order.store = stores[timer.order.store_id]  # one instance per store, not per order
            timer.state = Timer.State.FIRED
            if timer.order.status_version != timer.status_version:
                timer.state, timer.outcome = Timer.State.DEAD, "the order moved on"
            elif not rules[timer.rule_id].enabled:
                timer.outcome = "the rule is disabled"
            else:
                by_rule.setdefault(timer.rule_id, []).append(timer)
        fired = 0
        for rule_id, waiting in by_rule.items():
            keys = [f"timer:{timer.pk}" for timer in waiting]
            plans = rule_run_many(rules[rule_id], [t.order for t in waiting], keys=keys, now=now)
            for timer, planned in zip(waiting, plans, strict=True):
                timer.outcome = "; ".join(planned.lines) if planned.lines else "conditions did not hold"
                fired += bool(planned.lines)
        # One UPDATE per distinct outcome (a handful per batch), not one CASE over every timer.
        outcomes: dict[tuple[str, str], list[int]] = {}
        for timer in timers:
            outcomes.setdefault((timer.state, timer.outcome), []).append(timer.pk)
        for (state, outcome), ids in outcomes.items():
            Timer.objects.filter(pk__in=ids).update(state=state, outcome=outcome)
    return fired, len(timer_ids) - fired
