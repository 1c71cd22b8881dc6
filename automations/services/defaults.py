"""The rules every new store starts with (all editable, each created once by its key).

Together they are the COD workflow: a new COD order is asked to confirm (WhatsApp with Confirm /
Cancel buttons, SMS if WhatsApp fails: the notification's "first that delivers" routing), reminded,
queued for an agent, then cancelled (or, when it is worth it, handed to an agent); every status
the customer cares about tells them, and a review is asked for three days after delivery.

Every reply gets an answer: an unclear one "we got your message" (once in a while, not once per
line) and the queue; a confirm or cancel that comes once the order no longer awaits it, what
became of the order — a cancel after confirming is asked to send 2 for a call, and the 2 queues
the order. (A late confirm or cancel no rule answers is acknowledged like an unclear reply:
``messaging.services.inbound``.)

Rule names and queue reasons are stored in English and shown in the reader's language
(``gettext_noop`` here, ``orders.stored_words`` where they are shown).

A payment reported by the store is a fact, not a decision: store ingestion accepts a paid
prepaid order (``orders.services.ingest``).
"""

from decimal import Decimal

from django.utils.translation import gettext_noop

from automations.services.rules import SNAPSHOT_FIELDS, rule_snapshot

HIGH_VALUE = Decimal("1000")  # orders at or above this go to an agent rather than being cancelled

COD, PREPAID = (
    {"field": "payment_method", "op": "eq", "value": "cod"},
    {"field": "payment_method", "op": "eq", "value": "prepaid"},
)
# Confirmed and not yet delivered: a late cancel can still be acted on, by an agent who calls.
CONFIRMED_NOT_DELIVERED = {
    "field": "status",
    "op": "in",
    "value": ["confirmed", "processing", "shipped", "in_transit", "out_for_delivery"],
}
CANCELLED = {"field": "status", "op": "eq", "value": "cancelled"}
TOLD_TO_SEND_2 = {"field": "told", "op": "has", "value": "reply_late_confirmed"}
NOT_TOLD_TO_SEND_2 = {**TOLD_TO_SEND_2, "op": "lacks"}
ACKNOWLEDGE = {
    "type": "notify",
    "event": "reply_received",
    "policy": "first_delivered",
    "at_most_every_minutes": 30,
}


def _tell(key: str, name: str, position: int, status: str, event: str, **extra) -> dict:
    """A rule that tells the customer ``event`` when the order enters ``status``."""
    action = {"type": "notify", "event": event, "policy": "first_delivered"}
    return {
        "key": key,
        "name": name,
        "position": position,
        "trigger": "entered_status",
        "status": status,
        "actions": [action],
        **extra,
    }


def _answer(key: str, name: str, position: int, trigger: str, intent: str, actions: list, **extra) -> dict:
    """A rule that answers the customer's reply (``trigger``: reply_intent or late_reply)."""
    return {
        "key": key,
        "name": name,
        "position": position,
        "trigger": trigger,
        "intent": intent,
        "actions": actions,
        **extra,
    }


DEFAULT_RULES: tuple[dict, ...] = (
    {
        "key": "cod-ask-to-confirm",
        "name": gettext_noop("COD: ask the customer to confirm a new order"),
        "position": 1,
        "trigger": "entered_status",
        "status": "placed",
        "conditions": COD,
        "actions": [{"type": "transition", "name": "request_confirmation"}],
    },
    _tell(
        "prepaid-received",
        gettext_noop("Prepaid: tell the customer the order is received"),
        2,
        "placed",
        "order_received",
        conditions=PREPAID,
    ),
    _tell(
        "confirmation-request",
        gettext_noop("Send the confirmation request (Confirm / Cancel)"),
        3,
        "awaiting_confirmation",
        "confirmation_requested",
    ),
    {
        "key": "cod-reminder",
        "name": gettext_noop("COD: remind after 30 min without an answer"),
        "position": 10,
        "trigger": "in_status_for",
        "status": "awaiting_confirmation",
        "delay_minutes": 30,
        "actions": [{"type": "notify", "event": "confirmation_reminder", "policy": "first_delivered"}],
    },
    {
        "key": "cod-queue",
        "name": gettext_noop("COD: confirmation queue after 2 h without an answer"),
        "position": 20,
        "trigger": "in_status_for",
        "status": "awaiting_confirmation",
        "delay_minutes": 120,
        "actions": [
            {
                "type": "queue",
                "priority": 50,
                "reason": gettext_noop("no answer to the confirmation request in 2 h"),
            }
        ],
    },
    {
        "key": "cod-cancel-unconfirmed",
        "name": gettext_noop("COD: cancel what stays unconfirmed for 24 h"),
        "position": 30,
        "trigger": "in_status_for",
        "status": "awaiting_confirmation",
        "delay_minutes": 24 * 60,
        "conditions": {"field": "total_amount", "op": "lte", "value": str(HIGH_VALUE - Decimal("0.01"))},
        "actions": [{"type": "cancel", "reason": gettext_noop("not confirmed within 24 hours")}],
    },
    {
        "key": "cod-high-value-to-agent",
        "name": gettext_noop("COD: high-value orders unconfirmed for 24 h go to an agent"),
        "position": 31,
        "trigger": "in_status_for",
        "status": "awaiting_confirmation",
        "delay_minutes": 24 * 60,
        "conditions": {"field": "total_amount", "op": "gte", "value": str(HIGH_VALUE)},
        "actions": [
            {"type": "queue", "priority": 90, "reason": gettext_noop("high-value order unconfirmed for 24 h")}
        ],
    },
    {
        "key": "unclear-reply-to-queue",
        "name": gettext_noop("An unclear answer to the confirmation request goes to the queue"),
        "position": 40,
        "trigger": "reply_intent",
        "intent": "unclear",
        "actions": [
            {"type": "queue", "priority": 70, "reason": gettext_noop("the customer's answer needs a human")}
        ],
    },
    _answer(
        "unclear-reply-acknowledge",
        gettext_noop("An unclear answer: tell the customer we got it (once in 30 min)"),
        41,
        "reply_intent",
        "unclear",
        [ACKNOWLEDGE],
    ),
    _answer(
        "late-cancel-again-to-queue",
        gettext_noop("A cancel after confirming, once told to send 2: confirmation queue, and we got it"),
        42,
        "late_reply",
        "cancel",
        [
            {
                "type": "queue",
                "priority": 80,
                "reason": gettext_noop("customer asked to cancel after confirming"),
            },
            ACKNOWLEDGE,
        ],
        conditions={"all": [CONFIRMED_NOT_DELIVERED, TOLD_TO_SEND_2]},
    ),
    _answer(
        "late-cancel-confirmed",
        gettext_noop("A cancel after confirming: already confirmed, send 2 for a call"),
        43,
        "late_reply",
        "cancel",
        [{"type": "notify", "event": "reply_late_confirmed", "policy": "first_delivered"}],
        conditions={"all": [CONFIRMED_NOT_DELIVERED, NOT_TOLD_TO_SEND_2]},
    ),
    _answer(
        "late-confirm-confirmed",
        gettext_noop("A confirm of a confirmed order: nothing more to do"),
        44,
        "late_reply",
        "confirm",
        [{"type": "notify", "event": "reply_already_confirmed", "policy": "first_delivered"}],
        conditions=CONFIRMED_NOT_DELIVERED,
    ),
    _answer(
        "late-confirm-cancelled",
        gettext_noop("A confirm of a cancelled order: order again, or reply to talk to us"),
        45,
        "late_reply",
        "confirm",
        [{"type": "notify", "event": "reply_late_cancelled", "policy": "first_delivered"}],
        conditions=CANCELLED,
    ),
    _answer(
        "late-cancel-cancelled",
        gettext_noop("A cancel of a cancelled order: it is cancelled"),
        46,
        "late_reply",
        "cancel",
        [{"type": "notify", "event": "reply_late_cancelled", "policy": "first_delivered"}],
        conditions=CANCELLED,
    ),
    _answer(
        "late-unclear-acknowledge",
        gettext_noop(
            "A message about an order not awaiting an answer: tell the customer we got it (once in 30 min)"
        ),
        47,
        "late_reply",
        "unclear",
        [ACKNOWLEDGE],
    ),
    {
        "key": "shipment-stale",
        "name": gettext_noop("No carrier news for 72 h: alert the team and queue"),
        "position": 50,
        "trigger": "shipment_stale",
        "delay_minutes": 72 * 60,
        "actions": [
            {"type": "team_alert", "text": "no carrier news for 72 hours"},
            {"type": "queue", "priority": 60, "reason": gettext_noop("no carrier news for 72 hours")},
        ],
    },
    _tell(
        "cod-confirmed",
        gettext_noop("COD: thank the customer for confirming"),
        60,
        "confirmed",
        "order_confirmed",
        conditions=COD,
    ),
    _tell(
        "cancelled",
        gettext_noop("Tell the customer the order is cancelled"),
        61,
        "cancelled",
        "order_cancelled",
    ),
    _tell(
        "shipped", gettext_noop("Shipped: the carrier and the tracking link"), 62, "shipped", "order_shipped"
    ),
    _tell(
        "out-for-delivery",
        gettext_noop("Out for delivery: the amount to have ready"),
        63,
        "out_for_delivery",
        "out_for_delivery",
    ),
    _tell(
        "delivery-failed",
        gettext_noop("Delivery failed: reschedule, change the address or return"),
        64,
        "delivery_failed",
        "delivery_failed",
    ),
    _tell(
        "delivery-failed-payment-link",
        gettext_noop("Delivery failed: offer the store's payment link"),
        65,
        "delivery_failed",
        "payment_link_offered",
        conditions={"all": [COD, {"field": "payment_link", "op": "set"}]},
    ),
    _tell("delivered", gettext_noop("Delivered: thank you"), 66, "delivered", "order_delivered"),
    {
        **_tell(
            "review-request",
            gettext_noop("3 days after delivery: ask for a review"),
            67,
            "delivered",
            "review_request",
        ),
        "trigger": "in_status_for",
        "delay_minutes": 3 * 24 * 60,
    },
    _tell("refunded", gettext_noop("Tell the customer the refund is made"), 68, "refunded", "order_refunded"),
)


# Fields of default rules as they were before a change, by key. A store's copy that still says
# exactly the old default was never edited, and is brought up to the new one (default_rules_update).
PREVIOUS_DEFAULTS: dict[str, dict] = {
    # The reminder repeated the first request word for word; it has its own text now.
    "cod-reminder": {
        "actions": [{"type": "notify", "event": "confirmation_requested", "policy": "first_delivered"}]
    },
}


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


def default_rules_update(store, rule_model=None, revision_model=None) -> int:
    """Bring ``store``'s untouched copies of the default rules in ``PREVIOUS_DEFAULTS`` to what the
    default says now, each as a new version with its revision (by no one); how many. A copy the
    store changed in any way (even only switched off) is left as the store made it."""
    if rule_model is None:
        from automations.models import Rule as rule_model
        from automations.models import RuleRevision as revision_model
    updated = 0
    for spec in DEFAULT_RULES:
        if spec["key"] not in PREVIOUS_DEFAULTS:
            continue
        defaults = {"enabled": True, "conditions": {}, "status": "", "intent": "", "delay_minutes": None}
        values = {**defaults, **spec}
        now = {name: values[name] for name in SNAPSHOT_FIELDS}
        before = {**now, **PREVIOUS_DEFAULTS[spec["key"]]}
        rule = rule_model.objects.select_for_update().filter(store_id=store.pk, key=spec["key"]).first()
        if rule is None or rule_snapshot(rule) != before:
            continue
        for name, value in now.items():
            setattr(rule, name, value)
        rule.version += 1
        rule.save()
        revision_model.objects.create(rule=rule, version=rule.version, snapshot=now)
        updated += 1
    return updated
