"""What a rule does for real is on the order's record; a dry run only says what it would do."""

from datetime import timedelta
from decimal import Decimal

import pytest

from automations.models import QueueEntry, Rule, Timer, Trigger
from automations.services.engine import rule_run, rules_run
from messaging.models import Message, Notification
from orders.models import OrderEvent
from orders.transitions import OrderStatus

pytestmark = pytest.mark.django_db

S = OrderStatus
EVERY_KIND = [
    {"type": "notify", "event": "confirmation_requested", "policy": "all_opted_in"},
    {"type": "tag", "add": "chased"},
    {"type": "team_alert", "text": "look at this one"},
    {"type": "queue", "priority": 80, "reason": "call now"},
    {"type": "cancel", "reason": "asked twice"},
]


@pytest.fixture(autouse=True)
def _without_the_default_request_rule(store):
    """These tests run rules of their own on orders awaiting confirmation: the store's default
    rule that sends the request on that entry is off, so what the timeline shows is theirs."""
    Rule.objects.filter(store=store, key="confirmation-request").update(enabled=False)


def entry_rule(store, actions, **fields) -> Rule:
    """A rule on "entered awaiting_confirmation", written straight (the order is already there)."""
    values = {"name": "On entry", "trigger": Trigger.ENTERED_STATUS, "status": S.AWAITING_CONFIRMATION}
    return Rule.objects.create(store=store, actions=actions, **{**values, **fields})


def footprint(order) -> dict:
    """Everything a rule could change."""
    order.refresh_from_db()
    return {
        "status": (order.status, order.status_version),
        "tags": order.tags,
        "events": list(OrderEvent.objects.filter(order=order).values_list("pk", flat=True)),
        "notifications": Notification.objects.count(),
        "messages": Message.objects.count(),
        "queue": QueueEntry.objects.count(),
        "timers": list(Timer.objects.filter(order=order).values_list("pk", "state")),
    }


# --- dry run ----------------------------------------------------------------------------------
def test_a_dry_run_of_a_trigger_lists_what_each_rule_would_do(awaiting):
    order = awaiting()

    planned = rules_run(
        order.pk, Trigger.IN_STATUS_FOR, key="dry", dry_run=True, status=S.AWAITING_CONFIRMATION
    )

    assert [(plan.rule.key, plan.lines) for plan in planned] == [
        ("cod-reminder", ("send confirmation_reminder (first delivered)",)),
        (
            "cod-queue",
            ("put in the confirmation queue (priority 50): no answer to the confirmation request in 2 h",),
        ),
        ("cod-cancel-unconfirmed", ("apply cancel",)),
    ]


def test_a_dry_run_of_a_trigger_changes_nothing(awaiting):
    order = awaiting()
    before = footprint(order)

    rules_run(order.pk, Trigger.IN_STATUS_FOR, key="dry", dry_run=True, status=S.AWAITING_CONFIRMATION)

    assert footprint(order) == before


def test_a_dry_run_of_a_rule_lists_every_action_it_would_take(store, awaiting):
    order = awaiting()
    rule = entry_rule(store, EVERY_KIND)

    planned = rule_run(rule, order, key="dry", dry_run=True)

    assert planned.lines == (
        "send confirmation_requested (all opted in)",
        "tag +chased",
        "alert the team: look at this one",
        "put in the confirmation queue (priority 80): call now",
        "apply cancel",
    )


def test_a_dry_run_of_a_rule_changes_nothing(store, awaiting):
    order = awaiting()
    rule = entry_rule(store, EVERY_KIND)
    before = footprint(order)

    rule_run(rule, order, key="dry", dry_run=True)

    assert footprint(order) == before


def test_a_dry_run_of_the_entry_rules_changes_nothing(store, awaiting):
    order = awaiting()
    entry_rule(store, EVERY_KIND)
    before = footprint(order)

    [planned] = rules_run(order.pk, Trigger.ENTERED_STATUS, key="dry", dry_run=True)

    assert len(planned.lines) == len(EVERY_KIND)
    assert footprint(order) == before


def test_a_dry_run_plans_nothing_for_a_rule_whose_conditions_do_not_hold(awaiting, default_rule):
    order = awaiting(total_amount=Decimal("249.00"))

    planned = rule_run(default_rule("cod-high-value-to-agent"), order, key="dry", dry_run=True)

    assert planned.lines == ()


def test_a_dry_run_of_the_reply_rules_lists_their_actions(awaiting):
    order = awaiting()

    planned = rules_run(order.pk, Trigger.REPLY_INTENT, key="dry", dry_run=True, intent="unclear")

    assert [plan.lines for plan in planned] == [
        ("put in the confirmation queue (priority 70): the customer's answer needs a human",),
        ("send reply_received (first delivered, at most every 30 min)",),
    ]
    assert not QueueEntry.objects.exists()


def test_a_dry_run_says_a_transition_that_cannot_apply_would_be_skipped(store, awaiting):
    order = awaiting()
    # Written past validation: ship cannot apply to an order awaiting confirmation.
    rule = entry_rule(store, [{"type": "transition", "name": "ship"}])

    planned = rule_run(rule, order, key="dry", dry_run=True)

    assert planned.lines == ("ship not possible from awaiting_confirmation: skipped",)


# --- audit: what a rule does for real ---------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "event_type"),
    [
        ({"type": "notify", "event": "confirmation_requested"}, "automation_notified"),
        ({"type": "queue", "priority": 80, "reason": "call now"}, "automation_queued"),
        ({"type": "tag", "add": "chased"}, "automation_tagged"),
        ({"type": "team_alert", "text": "look at this one"}, "automation_team_alerted"),
    ],
)
def test_every_action_a_rule_takes_is_an_automation_event_naming_the_rule_and_its_version(
    store, awaiting, action, event_type
):
    order = awaiting()
    rule = entry_rule(store, [action], name="Chase")
    Rule.objects.filter(pk=rule.pk).update(version=3)  # as after two edits

    rules_run(order.pk, Trigger.ENTERED_STATUS, key="audit")

    event = OrderEvent.objects.get(order=order, source=OrderEvent.Source.AUTOMATION)
    assert event.type == event_type
    assert {key: event.payload[key] for key in ("rule_id", "rule_name", "rule_version")} == {
        "rule_id": rule.pk,
        "rule_name": "Chase",
        "rule_version": 3,
    }
    assert event.reason == "rule 'Chase' v3"


def test_a_transition_by_a_rule_is_recorded_on_its_own_event_naming_the_rule(store, awaiting):
    order = awaiting()
    rule = entry_rule(store, [{"type": "transition", "name": "cancel"}], name="Drop")

    rules_run(order.pk, Trigger.ENTERED_STATUS, key="audit")

    [event] = OrderEvent.objects.filter(order=order, source=OrderEvent.Source.AUTOMATION, transition="cancel")
    assert (event.type, event.transition, event.to_status) == ("cancelled", "cancel", S.CANCELLED)
    assert event.payload == {"rule_id": rule.pk, "rule_name": "Drop", "rule_version": 1}
    assert event.reason == "rule 'Drop' v1"


def test_a_rule_firing_twice_with_one_key_acts_once(store, awaiting):
    order = awaiting()
    entry_rule(store, [{"type": "cancel", "reason": "asked twice"}])

    rules_run(order.pk, Trigger.ENTERED_STATUS, key="entered:1")
    rules_run(order.pk, Trigger.ENTERED_STATUS, key="entered:1")

    assert OrderEvent.objects.filter(order=order, type="cancelled").count() == 1


def test_a_transition_that_no_longer_applies_is_skipped_and_leaves_no_event(store, awaiting):
    order = awaiting()
    # Written past validation: ship cannot apply to an order awaiting confirmation.
    entry_rule(store, [{"type": "transition", "name": "ship"}])

    [planned] = rules_run(order.pk, Trigger.ENTERED_STATUS, key="audit")

    assert planned.lines == ("ship not possible from awaiting_confirmation: skipped",)
    assert not OrderEvent.objects.filter(order=order, source=OrderEvent.Source.AUTOMATION).exists()


def test_a_timer_rule_s_actions_are_recorded_with_the_rule_too(awaiting, sweep_after, default_rule):
    order = awaiting()

    sweep_after(timedelta(minutes=31))

    event = OrderEvent.objects.get(order=order, source=OrderEvent.Source.AUTOMATION)
    reminder = default_rule("cod-reminder")
    assert (event.type, event.payload["rule_id"], event.payload["rule_version"]) == (
        "automation_notified",
        reminder.pk,
        1,
    )


def test_a_dry_run_says_an_order_already_queued_at_least_as_urgently_stays_as_it_is(awaiting):
    order = awaiting()
    QueueEntry.objects.create(order=order, priority=80, reason="called twice, no answer")
    rule = Rule.objects.get(store=order.store, key="cod-queue")

    planned = rule_run(rule, order, key="dry-run", dry_run=True)

    assert planned.lines == ("already queued: called twice, no answer",)
