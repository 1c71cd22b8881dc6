"""What a rule can do to an order, each through the service that owns it, and how a plan reads.

Every action takes the order (locked by the caller's transaction) and the rule, and returns a line
saying what it did; with ``dry_run`` it only says what it would do. Each one leaves an
``OrderEvent`` with ``source="automation"`` naming the rule and its version (transitions through
their own event, the others through an ``automation_*`` event).
"""

from django.db.models import Q
from django.utils import timezone
from django_fsm import can_proceed

from automations.models import QueueEntry, Rule
from messaging.events import CUSTOMER_EVENTS
from messaging.models import MessageTemplate
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
        return [f"unknown action {action!r}: one of {', '.join(ACTIONS)}"]
    kind = action["type"]
    if kind in ("transition", "cancel"):
        name = "cancel" if kind == "cancel" else action.get("name")
        spec = TRANSITIONS_BY_NAME.get(name)
        if spec is None:
            return [f"unknown transition {name!r}"]
        sources = ", ".join(spec.sources)
        if (
            rule.status
            and rule.trigger in ("entered_status", "in_status_for")
            and rule.status not in spec.sources
        ):
            return [f"{name} can never apply to an order in {rule.status} (it applies from {sources})"]
        if rule.trigger == "shipment_stale" and not set(IN_FLIGHT) & set(spec.sources):
            return [f"{name} can never apply to an order in flight (it applies from {sources})"]
    if kind == "notify":
        event = action.get("event")
        if event not in CUSTOMER_EVENTS and event not in EXTRA_EVENTS:
            return [f"unknown event {event!r}"]
        own_or_default = Q(store__isnull=True) | Q(store_id=rule.store_id)
        has_template = MessageTemplate.objects.filter(own_or_default, event=event).exists()
        if not has_template:
            return [f"no template for {event!r}: add one before a rule sends it"]
        if action.get("policy", "first_delivered") not in POLICIES:
            return [f"channel policy is one of {', '.join(POLICIES)}"]
    if kind == "queue" and not str(action.get("reason", "")).strip():
        return ["putting an order in the queue needs a reason for the agent"]
    if kind == "tag" and not (action.get("add") or action.get("remove")):
        return ["a tag action adds or removes a tag"]
    return []


def action_apply(rule: Rule, action: dict, order: Order, *, key: str, dry_run: bool = False) -> str:
    return ACTIONS[action["type"]](rule, action, order, key=key, dry_run=dry_run)


def _audit(rule: Rule) -> dict:
    return {"rule_id": rule.pk, "rule_name": rule.name, "rule_version": rule.version}


def _event(order: Order, rule: Rule, kind: str, **payload) -> None:
    OrderEvent.objects.create(
        order=order,
        type=f"automation_{kind}",
        source=AUTOMATION,
        reason=f"rule {rule.name!r} v{rule.version}",
        payload={**_audit(rule), **payload},
    )


def _notify(rule, action, order, *, key, dry_run) -> str:
    event, policy = action["event"], action.get("policy", "first_delivered")
    if dry_run:
        return f"send {event} ({policy.replace('_', ' ')})"
    if policy == "all_opted_in":
        settings = messaging_settings_for(order.store)
        channels = route_channels(order.customer, settings, "transactional")
        if not channels:
            return f"{event}: no channel the customer can be told on"
        for channel in channels:
            notification_create(order, event=event, key=f"{key}:{event}:{channel}", only_channel=channel)
    else:
        notification_create(order, event=event, key=f"{key}:{event}")
    _event(order, rule, "notified", event=event, policy=policy)
    return f"sent {event}"


def _transition(rule, action, order, *, key, dry_run, name=None, reason="") -> str:
    name = name or action["name"]
    if dry_run:
        possible = can_proceed(getattr(order, name))
        return f"apply {name}" if possible else f"{name} not possible from {order.status}: skipped"
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


def _queue(rule, action, order, *, key, dry_run) -> str:
    priority, reason = int(action.get("priority", 50)), action["reason"]
    open_entries = QueueEntry.objects.filter(order=order, state=QueueEntry.State.OPEN)
    entry = (open_entries if dry_run else open_entries.select_for_update()).first()
    if dry_run:
        if entry is not None and priority <= entry.priority:
            return f"already queued: {entry.reason}"
        return f"put in the confirmation queue (priority {priority}): {reason}"
    if entry is None:
        QueueEntry.objects.create(order=order, priority=priority, reason=reason, rule=rule)
    elif priority > entry.priority:
        # Already waiting for an agent, but this is more urgent: move it up, say why.
        entry.priority, entry.reason, entry.rule = priority, reason, rule
        entry.save(update_fields=["priority", "reason", "rule"])
    else:
        return f"already queued: {entry.reason}"
    _event(order, rule, "queued", priority=priority, queue_reason=reason)
    return f"queued: {reason}"


def _tag(rule, action, order, *, key, dry_run) -> str:
    add, remove = action.get("add"), action.get("remove")
    if dry_run:
        return f"tag +{add}" if add else f"tag -{remove}"
    tags = [tag for tag in (order.tags or []) if tag != remove]
    if add and add not in tags:
        tags.append(add)
    if tags != (order.tags or []):
        Order.objects.filter(pk=order.pk).update(tags=tags, updated_at=timezone.now())
        order.tags = tags
        _event(order, rule, "tagged", added=add, removed=remove)
    return f"tags now {', '.join(tags) or 'none'}"


def _team_alert(rule, action, order, *, key, dry_run) -> str:
    text = action.get("text") or rule.name
    if dry_run:
        return f"alert the team: {text}"
    # The alert is on the order's timeline and in the ops log; a chat integration reads them.
    _event(order, rule, "team_alerted", text=text)
    return f"team alerted: {text}"


ACTIONS = {
    "notify": _notify,
    "transition": _transition,
    "cancel": _cancel,
    "queue": _queue,
    "tag": _tag,
    "team_alert": _team_alert,
}
# Events rules may send that no transition announces (none yet: a reminder re-sends the request).
EXTRA_EVENTS: tuple[str, ...] = ()
