"""The rules every new store starts with (all editable, each created once by its key).

What is not here is done elsewhere: each status change already tells the customer (messaging's
transition events: confirmation request, confirmed, shipped with the tracking link, out for
delivery with the amount to have ready, failed delivery, delivered); a new order's first move
(COD → ask to confirm, paid → accept) is still made by store ingestion (orders.services.ingest).
"""

from decimal import Decimal

HIGH_VALUE = Decimal("1000")  # orders at or above this go to an agent rather than being cancelled

DEFAULT_RULES: tuple[dict, ...] = (
    {
        "key": "cod-reminder",
        "name": "COD: remind after 30 min without an answer",
        "position": 10,
        "trigger": "in_status_for",
        "status": "awaiting_confirmation",
        "delay_minutes": 30,
        "actions": [{"type": "notify", "event": "confirmation_requested", "policy": "first_delivered"}],
    },
    {
        "key": "cod-queue",
        "name": "COD: confirmation queue after 2 h without an answer",
        "position": 20,
        "trigger": "in_status_for",
        "status": "awaiting_confirmation",
        "delay_minutes": 120,
        "actions": [
            {"type": "queue", "priority": 50, "reason": "no answer to the confirmation request in 2 h"}
        ],
    },
    {
        "key": "cod-cancel-unconfirmed",
        "name": "COD: cancel what stays unconfirmed for 24 h",
        "position": 30,
        "trigger": "in_status_for",
        "status": "awaiting_confirmation",
        "delay_minutes": 24 * 60,
        "conditions": {"field": "total_amount", "op": "lte", "value": str(HIGH_VALUE - Decimal("0.01"))},
        "actions": [{"type": "cancel", "reason": "not confirmed within 24 hours"}],
    },
    {
        "key": "cod-high-value-to-agent",
        "name": "COD: high-value orders unconfirmed for 24 h go to an agent",
        "position": 31,
        "trigger": "in_status_for",
        "status": "awaiting_confirmation",
        "delay_minutes": 24 * 60,
        "conditions": {"field": "total_amount", "op": "gte", "value": str(HIGH_VALUE)},
        "actions": [{"type": "queue", "priority": 90, "reason": "high-value order unconfirmed for 24 h"}],
    },
    {
        "key": "unclear-reply-to-queue",
        "name": "An unclear answer to the confirmation request goes to the queue",
        "position": 40,
        "trigger": "reply_intent",
        "intent": "unclear",
        "actions": [{"type": "queue", "priority": 70, "reason": "the customer's answer needs a human"}],
    },
    {
        "key": "shipment-stale",
        "name": "No carrier news for 72 h: alert the team and queue",
        "position": 50,
        "trigger": "shipment_stale",
        "delay_minutes": 72 * 60,
        "actions": [
            {"type": "team_alert", "text": "no carrier news for 72 hours"},
            {"type": "queue", "priority": 60, "reason": "no carrier news for 72 hours"},
        ],
    },
)


def default_rules_create(store, rule_model=None, revision_model=None) -> int:
    """Give ``store`` the default rules it lacks; how many were made. The models may be a
    migration's historical ones."""
    if rule_model is None:
        from automations.models import Rule as rule_model
        from automations.models import RuleRevision as revision_model
    made = 0
    for spec in DEFAULT_RULES:
        values = {"conditions": {}, "status": "", "intent": "", "delay_minutes": None, **spec}
        rule, created = rule_model.objects.get_or_create(store_id=store.pk, key=spec["key"], defaults=values)
        if created:
            snapshot = {name: values[name] for name in values if name != "key"}
            revision_model.objects.create(rule=rule, version=1, snapshot=snapshot)
            made += 1
    return made
