"""What a rule can do to an order, each through the service that owns it, and how a plan reads.

Every action takes the orders (locked by the caller's transaction) and the rule, and returns a line
per order saying what it did; with ``dry_run`` it only says what it would do. Notify, transition
and cancel go one order at a time through their services; queue, tag and team alert, which only
write rows of their own, act on all the orders at once (``BATCHED``). Each one leaves an
``OrderEvent`` with ``source="automation"`` naming the rule and its version (transitions through
their own event, the others through an ``automation_*`` event).

A plan's lines (``dry_run``) are only shown, so they are in the reader's language; the lines of
what was done are kept (a timer's outcome, a reply's record) and stay in English.
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django_fsm import can_proceed

from automations.models import QueueEntry, Rule
from automations.services.team_alerts import team_alerts_queue
from messaging.events import CUSTOMER_EVENTS
from messaging.models import MessageTemplate, Notification
from messaging.services.outbox import notification_create
from messaging.services.routing import messaging_settings_for, route_channels
from orders.errors import IllegalTransition
from orders.models import Order, OrderEvent
from orders.services import order_transition
from orders.transitions import IN_FLIGHT, TRANSITIONS_BY_NAME

AUTOMATION = OrderEvent.Source.AUTOMATION
POLICIES = ("first_delivered", "all_opted_in")


def action_problems(rule: Rule, action) -> list[str]:
    """Why ``action`` cannot be saved on ``rule`` (empty when it can)."""
    if not isinstance(action, dict) or action.get("type") not in ACTIONS:
        return [
            gettext("unknown action %(action)r: one of %(types)s")
            % {"action": action, "types": ", ".join(ACTIONS)}
        ]
    kind = action["type"]
    if kind in ("transition", "cancel"):
        name = "cancel" if kind == "cancel" else action.get("name")
        spec = TRANSITIONS_BY_NAME.get(name)
        if spec is None:
            return [gettext("unknown transition %(name)r") % {"name": name}]
        sources = ", ".join(spec.sources)
        if (
            rule.status
            and rule.trigger in ("entered_status", "in_status_for")
            and rule.status not in spec.sources
        ):
            return [
                gettext("%(name)s can never apply to an order in %(status)s (it applies from %(sources)s)")
                % {"name": name, "status": rule.status, "sources": sources}
            ]
        if rule.trigger == "shipment_stale" and not set(IN_FLIGHT) & set(spec.sources):
            return [
                gettext("%(name)s can never apply to an order in flight (it applies from %(sources)s)")
                % {"name": name, "sources": sources}
            ]
    if kind == "notify":
        event = action.get("event")
        if event not in CUSTOMER_EVENTS:
            return [gettext("unknown event %(event)r") % {"event": event}]
        own_or_default = Q(store__isnull=True) | Q(store_id=rule.store_id)
        has_template = MessageTemplate.objects.filter(own_or_default, event=event).exists()
        if not has_template:
            return [gettext("no template for %(event)r: add one before a rule sends it") % {"event": event}]
        if action.get("policy", "first_delivered") not in POLICIES:
            return [gettext("channel policy is one of %(policies)s") % {"policies": ", ".join(POLICIES)}]
        every = action.get("at_most_every_minutes")
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            return [gettext("at_most_every_minutes is a whole number of minutes, 1 or more")]
    if kind == "queue" and not str(action.get("reason", "")).strip():
        return [gettext("putting an order in the queue needs a reason for the agent")]
    if kind == "tag" and not (action.get("add") or action.get("remove")):
        return [gettext("a tag action adds or removes a tag")]
    return []


def action_apply(rule: Rule, action: dict, order: Order, *, key: str, dry_run: bool = False) -> str:
    return action_apply_many(rule, action, [order], keys=[key], dry_run=dry_run)[0]


def action_apply_many(
    rule: Rule, action: dict, orders: list[Order], *, keys: list[str], dry_run: bool = False
) -> list[str]:
    """``action`` on each of ``orders`` (locked by the caller's transaction): a line per order.

    The row-only actions (``BATCHED``) act on all the orders with a few set-based statements, so a
    sweep's batch costs the same round trips whatever its size; the others go through their
    service one order at a time (``keys``: each order's idempotency key).
    """
    kind = action["type"]
    if kind in BATCHED:
        return BATCHED[kind](rule, action, orders, dry_run=dry_run)
    act = ONE_BY_ONE[kind]
    pairs = zip(orders, keys, strict=True)
    return [act(rule, action, order, key=key, dry_run=dry_run) for order, key in pairs]


def _audit(rule: Rule) -> dict:
    return {"rule_id": rule.pk, "rule_name": rule.name, "rule_version": rule.version}


def _events(rule: Rule, kind: str, facts: list[tuple[Order, dict]]) -> None:
    """One ``automation_<kind>`` timeline event per (order, payload), in one INSERT."""
    OrderEvent.objects.bulk_create(
        OrderEvent(
            order=order,
            type=f"automation_{kind}",
            source=AUTOMATION,
            reason=f"rule {rule.name!r} v{rule.version}",
            payload={**_audit(rule), **payload},
        )
        for order, payload in facts
    )


def _notify(rule, action, order, *, key, dry_run) -> str:
    event, policy = action["event"], action.get("policy", "first_delivered")
    every = action.get("at_most_every_minutes")
    if dry_run:
        values = {"event": event, "policy": policy.replace("_", " "), "every": every}
        if every:
            return gettext("send %(event)s (%(policy)s, at most every %(every)s min)") % values
        return gettext("send %(event)s (%(policy)s)") % values
    if every:
        # The order's row lock (held by the caller) makes this check and the send one step.
        since = timezone.now() - timedelta(minutes=every)
        if Notification.objects.filter(order=order, event=event, created_at__gte=since).exists():
            return f"{event} not sent again: already sent in the last {every} min"
    if policy == "all_opted_in":
        settings = messaging_settings_for(order.store)
        channels = route_channels(order.customer, settings, "transactional")
        if not channels:
            return f"{event}: no channel the customer can be told on"
        for channel in channels:
            notification_create(order, event=event, key=f"{key}:{event}:{channel}", only_channel=channel)
    else:
        notification_create(order, event=event, key=f"{key}:{event}")
    _events(rule, "notified", [(order, {"event": event, "policy": policy})])
    return f"sent {event}"


def _transition(rule, action, order, *, key, dry_run, name=None, reason="") -> str:
    name = name or action["name"]
    if dry_run:
        if can_proceed(getattr(order, name)):
            return gettext("apply %(name)s") % {"name": name}
        return gettext("%(name)s not possible from %(status)s: skipped") % {
            "name": name,
            "status": order.status,
        }
    try:
        order_transition(
            order,
            name,
            source=AUTOMATION,
            reason=reason or f"rule {rule.name!r} v{rule.version}",
            payload=_audit(rule),
            idempotency_key=f"{key}:{name}",
        )
    except IllegalTransition:
        return f"{name} not possible from {order.status}: skipped"
    return f"applied {name}"


def _cancel(rule, action, order, *, key, dry_run) -> str:
    return _transition(
        rule, action, order, key=key, dry_run=dry_run, name="cancel", reason=action.get("reason", "")
    )


def _queue(rule, action, orders, *, dry_run) -> list[str]:
    priority, reason = int(action.get("priority", 50)), action["reason"]
    open_entries = QueueEntry.objects.filter(order__in=orders, state=QueueEntry.State.OPEN)
    if not dry_run:
        open_entries = open_entries.select_for_update()
    entries = {entry.order_id: entry for entry in open_entries}
    lines, new, moved_up, facts = [], [], [], []
    for order in orders:
        entry = entries.get(order.pk)
        if entry is not None and priority <= entry.priority:
            if dry_run:
                lines.append(gettext("already queued: %(reason)s") % {"reason": entry.reason})
            else:
                lines.append(f"already queued: {entry.reason}")
            continue
        if dry_run:
            lines.append(
                gettext("put in the confirmation queue (priority %(priority)s): %(reason)s")
                % {"priority": priority, "reason": reason}
            )
            continue
        if entry is None:
            entries[order.pk] = QueueEntry(order=order, priority=priority, reason=reason, rule=rule)
            new.append(entries[order.pk])
        else:
            # Already waiting for an agent, but this is more urgent: move it up, say why.
            entry.priority, entry.reason, entry.rule = priority, reason, rule
            moved_up.append(entry)
        facts.append((order, {"priority": priority, "queue_reason": reason}))
        lines.append(f"queued: {reason}")
    QueueEntry.objects.bulk_create(new)
    if moved_up:
        QueueEntry.objects.bulk_update(moved_up, ["priority", "reason", "rule"])
    _events(rule, "queued", facts)
    return lines


def _tag(rule, action, orders, *, dry_run) -> list[str]:
    add, remove = action.get("add"), action.get("remove")
    if dry_run:
        line = gettext("tag +%(tag)s") % {"tag": add} if add else gettext("tag -%(tag)s") % {"tag": remove}
        return [line] * len(orders)
    lines, changed, now = [], [], timezone.now()
    for order in orders:
        tags = [tag for tag in (order.tags or []) if tag != remove]
        if add and add not in tags:
            tags.append(add)
        if tags != (order.tags or []):
            order.tags, order.updated_at = tags, now
            changed.append(order)
        lines.append(f"tags now {', '.join(tags) or 'none'}")
    if changed:
        Order.objects.bulk_update(changed, ["tags", "updated_at"])
    _events(rule, "tagged", [(order, {"added": add, "removed": remove}) for order in changed])
    return lines


def _team_alert(rule, action, orders, *, dry_run) -> list[str]:
    text = action.get("text") or rule.name
    if dry_run:
        return [gettext("alert the team: %(text)s") % {"text": text}] * len(orders)
    team_alerts_queue(rule, orders, text)  # posted to the team channel after commit
    _events(rule, "team_alerted", [(order, {"text": text}) for order in orders])
    return [f"team alerted: {text}"] * len(orders)


ONE_BY_ONE = {"notify": _notify, "transition": _transition, "cancel": _cancel}
# Actions that only write rows of their own: done for many orders at once.
BATCHED = {"queue": _queue, "tag": _tag, "team_alert": _team_alert}
ACTIONS = {**ONE_BY_ONE, **BATCHED}
