"""Saving a rule (validated, versioned, with its revision) and planning what it would do.

Versions: every save that changes any of ``SNAPSHOT_FIELDS`` (what the rule does, and also its name,
position and whether it is enabled) bumps ``version`` by one and writes the ``RuleRevision`` of the
new version in the same transaction. The audit line of every action names the rule and its version,
so one version must mean one text of the rule, name included. A save that changes nothing writes
nothing.

Validation: a rule is refused with ``automations.services.engine.rule_problems``, except when the
only change is switching it off — a rule that became invalid (say its template was deleted) can
always be disabled.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from automations.models import Rule, RuleRevision, Trigger
from automations.services.actions import action_problems
from automations.services.conditions import condition_problems
from automations.services.engine import rule_problems, rule_run
from orders.models import Order
from orders.transitions import IN_FLIGHT

SNAPSHOT_FIELDS = (
    "name",
    "position",
    "enabled",
    "trigger",
    "status",
    "delay_minutes",
    "intent",
    "conditions",
    "actions",
)
# rule_problems' own messages about the trigger's settings (in English, as rule_problems marks
# them: each problem is compared in the language it was written in), and the form field each one
# is about.
TRIGGER_PROBLEM_FIELDS = {
    gettext_noop("this trigger needs a status"): "status",
    gettext_noop("this trigger needs a delay in minutes"): "delay_minutes",
    gettext_noop("a reply rule needs the intent: confirm, cancel or unclear"): "intent",
    gettext_noop("a rule needs at least one action"): "actions",
}
MAX_DRY_RUN_DAYS = 90
DRY_RUN_LIMIT = 300  # orders planned per dry run; a page of a few hundred is what a person reads


# --- saving ----------------------------------------------------------------------------------
def rule_snapshot(rule: Rule) -> dict:
    return {name: getattr(rule, name) for name in SNAPSHOT_FIELDS}


def snapshot_value(snapshot: dict, name: str):
    """A field of a revision's snapshot; the model default where an early snapshot left it out."""
    if name in snapshot:
        return snapshot[name]
    return Rule._meta.get_field(name).get_default()


def rule_problems_by_field(rule: Rule) -> dict[str, list[str]]:
    """``rule_problems`` sorted by the form field each is about (``NON_FIELD_ERRORS`` for the rest),
    actions' problems prefixed with the action's place in the list."""
    problems = rule_problems(rule)
    in_conditions = set(condition_problems(rule.conditions))
    action_of: dict[str, str] = {}
    if isinstance(rule.actions, list):
        for number, action in enumerate(rule.actions, start=1):
            kind = action.get("type") if isinstance(action, dict) else None
            for problem in action_problems(rule, action):
                if kind:
                    place = gettext("action %(number)s (%(type)s)") % {"number": number, "type": kind}
                else:
                    place = gettext("action %(number)s") % {"number": number}
                action_of.setdefault(problem, place)
    trigger_fields = {gettext(message): name for message, name in TRIGGER_PROBLEM_FIELDS.items()}
    by_field: dict[str, list[str]] = {}
    for problem in problems:
        if problem in action_of:
            field = "actions"
            problem = gettext("%(action)s: %(problem)s") % {"action": action_of[problem], "problem": problem}
        elif problem in in_conditions:
            field = "conditions"
        else:
            field = trigger_fields.get(problem, NON_FIELD_ERRORS)
        by_field.setdefault(field, []).append(problem)
    return by_field


def rule_save(rule: Rule, *, actor, expected_version: int | None = None) -> Rule:
    """Save ``rule`` (new or edited) if it is valid; raise ``ValidationError`` (by field) if not.

    ``expected_version``: the version the editor started from; if the rule has been saved since,
    the save is refused rather than silently undoing the other edit.
    """
    with transaction.atomic():
        current = None
        if rule.pk is not None:
            current = Rule.objects.select_for_update().filter(pk=rule.pk).first()
        if current is not None and expected_version is not None and current.version != expected_version:
            raise ValidationError(
                _(
                    "This rule was changed since you opened it (it is now version %(version)s). "
                    "Reload it and make your change again."
                ),
                code="stale",
                params={"version": current.version},
            )
        if current is not None and current.store_id != rule.store_id:
            raise ValidationError(
                {"store": [_("A rule stays with its store: add a new rule to the other store.")]}
            )
        before = rule_snapshot(current) if current is not None else None
        after = rule_snapshot(rule)
        if before == after:
            rule.version = current.version
            return rule
        only_disabling = (
            before is not None
            and {name for name in SNAPSHOT_FIELDS if before[name] != after[name]} == {"enabled"}
            and not rule.enabled
        )
        if not only_disabling:
            problems = rule_problems_by_field(rule)
            if problems:
                raise ValidationError(problems)
        rule.version = 1 if current is None else current.version + 1
        rule.save()
        RuleRevision.objects.create(rule=rule, version=rule.version, snapshot=after, changed_by=actor)
    return rule


def rule_set_enabled(rule: Rule, enabled: bool, *, actor) -> bool:
    """Switch ``rule`` on or off through ``rule_save``; False if it already was."""
    if rule.enabled == enabled:
        return False
    rule.enabled = enabled
    rule_save(rule, actor=actor)
    return True


# --- dry run ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DryRunRow:
    """What the rule would do to one order: ``outcome`` is one of OUTCOMES' keys."""

    order: Order
    outcome: str
    lines: tuple[str, ...] = ()


ACTS, CONDITIONS_FAIL, NOT_IN_STATUS, NOT_IN_FLIGHT = (
    "acts",
    "conditions_fail",
    "not_in_status",
    "not_in_flight",
)
OUTCOMES = {
    ACTS: _("would act"),
    CONDITIONS_FAIL: _("conditions do not hold"),
    NOT_IN_STATUS: _("not in the rule's status"),
    NOT_IN_FLIGHT: _("not on its way (no shipment to go stale)"),
}


def statuses_the_rule_waits_in(rule: Rule) -> tuple[str, ...] | None:
    """The statuses an order must be in for the rule's trigger to reach it; None for any status.

    Status rules only see orders in their status; a stale-shipment rule only orders on their way
    (its timer starts when the order enters one of those). Replies and failed messages can come in
    whatever the order's status.
    """
    if rule.trigger in (Trigger.ENTERED_STATUS, Trigger.IN_STATUS_FOR):
        return (rule.status,)
    if rule.trigger == Trigger.SHIPMENT_STALE:
        return tuple(IN_FLIGHT)
    return None


def dry_run_orders(rule: Rule, days: int, now: datetime | None = None) -> QuerySet:
    """The store's orders placed in the last ``days`` days, those the rule can reach first."""
    if not 1 <= days <= MAX_DRY_RUN_DAYS:
        raise ValueError(f"days is from 1 to {MAX_DRY_RUN_DAYS}")
    since = (now or timezone.now()) - timedelta(days=days)
    orders = Order.objects.filter(store_id=rule.store_id, placed_at__gte=since)
    statuses = statuses_the_rule_waits_in(rule)
    if statuses is None:
        return orders.order_by("-placed_at", "-pk")
    unreachable = Case(
        When(status__in=statuses, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    return orders.annotate(unreachable=unreachable).order_by("unreachable", "-placed_at", "-pk")


def rule_dry_run(
    rule: Rule, *, order: Order | None = None, days: int | None = None, limit: int = DRY_RUN_LIMIT
) -> list[DryRunRow]:
    """What ``rule`` would do, without doing it: for ``order``, or for the store's orders placed in
    the last ``days`` days (at most ``limit`` of them, those the rule can reach first).

    Nothing is kept: every action is only planned (``dry_run``), and whatever a condition reads
    runs in a transaction that is rolled back.
    """
    if (order is None) == (days is None):
        raise ValueError("dry-run one order or the orders of the last N days")
    if order is not None:
        if order.store_id != rule.store_id:
            raise ValueError("the order is not of the rule's store")
        orders = [order]
    else:
        orders = list(dry_run_orders(rule, days).select_related("store", "customer")[:limit])
    statuses = statuses_the_rule_waits_in(rule)
    rows = []
    with transaction.atomic():
        for candidate in orders:
            if statuses is not None and candidate.status not in statuses:
                outcome = NOT_IN_FLIGHT if rule.trigger == Trigger.SHIPMENT_STALE else NOT_IN_STATUS
                rows.append(DryRunRow(candidate, outcome))
                continue
            planned = rule_run(rule, candidate, key="dry-run", dry_run=True)
            rows.append(DryRunRow(candidate, ACTS if planned.lines else CONDITIONS_FAIL, planned.lines))
        transaction.set_rollback(True)
    return rows
