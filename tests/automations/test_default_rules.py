"""The default rules every new store gets, and each one firing on its trigger."""

import importlib
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.apps import apps
from django.utils import timezone

from automations.models import QueueEntry, Rule, RuleRevision
from automations.services.defaults import DEFAULT_RULES, default_rules_create, default_rules_update
from automations.services.engine import rule_problems
from messaging.models import Notification
from orders.models import OrderEvent
from orders.services import order_transition
from orders.transitions import OrderStatus
from tests.factories import order_in_status

pytestmark = pytest.mark.django_db

S = OrderStatus
DEFAULT_KEYS = [
    "cod-ask-to-confirm",
    "prepaid-received",
    "confirmation-request",
    "cod-reminder",
    "cod-queue",
    "cod-cancel-unconfirmed",
    "cod-high-value-to-agent",
    "unclear-reply-to-queue",
    "unclear-reply-acknowledge",
    "late-cancel-again-to-queue",
    "late-cancel-confirmed",
    "late-confirm-confirmed",
    "late-confirm-cancelled",
    "late-cancel-cancelled",
    "late-unclear-acknowledge",
    "shipment-stale",
    "cod-confirmed",
    "cancelled",
    "shipped",
    "out-for-delivery",
    "delivery-failed",
    "delivery-failed-payment-link",
    "delivered",
    "review-request",
    "refunded",
]
JUST_AFTER_24_H = timedelta(hours=24, minutes=1)


def open_entry(order) -> QueueEntry:
    return QueueEntry.objects.get(order=order, state=QueueEntry.State.OPEN)


# --- creation ---------------------------------------------------------------------------------
def test_a_new_store_has_the_default_rules_in_their_order(store):
    rules = Rule.objects.filter(store=store).order_by("position")

    assert [rule.key for rule in rules] == DEFAULT_KEYS
    assert {(rule.enabled, rule.version) for rule in rules} == {(True, 1)}


def test_each_default_rule_starts_with_its_first_revision(store):
    revisions = RuleRevision.objects.filter(rule__store=store)

    assert sorted(revision.rule.key for revision in revisions) == sorted(DEFAULT_KEYS)
    assert {revision.version for revision in revisions} == {1}
    reminder = revisions.get(rule__key="cod-reminder")
    assert reminder.snapshot["delay_minutes"] == 30
    spec = next(spec for spec in DEFAULT_RULES if spec["key"] == "cod-reminder")
    assert reminder.snapshot["actions"] == spec["actions"]


def test_creating_the_default_rules_again_adds_nothing(store):
    made = default_rules_create(store)

    assert made == 0
    assert Rule.objects.filter(store=store).count() == len(DEFAULT_KEYS)
    assert RuleRevision.objects.filter(rule__store=store).count() == len(DEFAULT_KEYS)


def test_creating_the_default_rules_again_brings_back_only_a_deleted_one(store, default_rule):
    default_rule("cod-queue").delete()

    made = default_rules_create(store)

    assert made == 1
    assert Rule.objects.filter(store=store).count() == len(DEFAULT_KEYS)


def test_creating_the_default_rules_again_keeps_what_the_store_changed(store, default_rule):
    Rule.objects.filter(pk=default_rule("cod-reminder").pk).update(delay_minutes=45, enabled=False)

    default_rules_create(store)

    reminder = default_rule("cod-reminder")
    assert (reminder.delay_minutes, reminder.enabled) == (45, False)


def test_every_default_rule_is_valid(store):
    problems = {rule.key: rule_problems(rule) for rule in Rule.objects.filter(store=store)}

    assert {key: found for key, found in problems.items() if found} == {}


# --- bringing existing stores up to date --------------------------------------------------------
OLD_REMINDER = [{"type": "notify", "event": "confirmation_requested", "policy": "first_delivered"}]


def as_before_the_reminder_had_its_own_text(rule, **changes):
    Rule.objects.filter(pk=rule.pk).update(actions=OLD_REMINDER, **changes)


def test_an_untouched_reminder_rule_is_brought_to_the_reminders_own_text(store, default_rule):
    as_before_the_reminder_had_its_own_text(default_rule("cod-reminder"))

    updated = default_rules_update(store)

    reminder = default_rule("cod-reminder")
    assert updated == 1
    assert (reminder.version, reminder.actions[0]["event"]) == (2, "confirmation_reminder")
    revision = reminder.revisions.get(version=2)
    assert (revision.snapshot["actions"], revision.changed_by) == (reminder.actions, None)


@pytest.mark.parametrize("edit", [{"delay_minutes": 45}, {"enabled": False}, {"name": "Rappel"}])
def test_a_reminder_rule_the_store_edited_is_left_as_the_store_made_it(store, default_rule, edit):
    as_before_the_reminder_had_its_own_text(default_rule("cod-reminder"), **edit)

    updated = default_rules_update(store)

    reminder = default_rule("cod-reminder")
    assert updated == 0
    assert (reminder.version, reminder.actions) == (1, OLD_REMINDER)


def test_a_store_with_the_current_defaults_needs_no_update(store):
    assert default_rules_update(store) == 0


def test_the_upgrade_gives_an_existing_store_the_reply_rules_and_the_new_reminder(store, default_rule):
    as_before_the_reminder_had_its_own_text(default_rule("cod-reminder"))
    Rule.objects.filter(store=store, trigger="late_reply").delete()

    migration = importlib.import_module("automations.migrations.0006_late_replies_and_queue_closing")
    migration.add_and_update_default_rules(apps, None)

    assert [rule.key for rule in Rule.objects.filter(store=store).order_by("position")] == DEFAULT_KEYS
    assert default_rule("cod-reminder").actions[0]["event"] == "confirmation_reminder"


# --- firing -----------------------------------------------------------------------------------
def test_no_answer_in_30_minutes_sends_the_reminder_not_the_first_request_again(awaiting, sweep_after):
    order = awaiting()

    sweep_after(timedelta(minutes=31))

    assert Notification.objects.filter(order=order, event="confirmation_requested").count() == 1
    reminder = Notification.objects.get(order=order, event="confirmation_reminder")
    assert reminder.idempotency_key.startswith("rule:")


def test_no_answer_in_2_hours_puts_the_order_in_the_confirmation_queue(awaiting, sweep_after, default_rule):
    order = awaiting()

    sweep_after(timedelta(hours=2, minutes=1))

    entry = open_entry(order)
    assert (entry.priority, entry.reason, entry.rule) == (
        50,
        "no answer to the confirmation request in 2 h",
        default_rule("cod-queue"),
    )


def test_no_answer_in_119_minutes_queues_nothing(awaiting, sweep_after):
    order = awaiting()

    sweep_after(timedelta(minutes=119))

    assert not QueueEntry.objects.filter(order=order).exists()


@pytest.mark.parametrize("total", ["249.00", "999.99"])
def test_an_order_below_1000_unconfirmed_for_24_hours_is_cancelled_with_the_reason(
    awaiting, sweep_after, total
):
    order = awaiting(total_amount=Decimal(total))

    sweep_after(JUST_AFTER_24_H)

    order.refresh_from_db()
    assert order.status == S.CANCELLED
    cancelled = OrderEvent.objects.get(order=order, type="cancelled")
    assert (cancelled.source, cancelled.reason) == (
        OrderEvent.Source.AUTOMATION,
        "not confirmed within 24 hours",
    )
    assert Notification.objects.filter(order=order, event="order_cancelled").exists()  # the customer is told


@pytest.mark.parametrize("total", ["1000.00", "4500.00"])
def test_a_high_value_order_unconfirmed_for_24_hours_is_not_cancelled(awaiting, sweep_after, total):
    order = awaiting(total_amount=Decimal(total))

    sweep_after(JUST_AFTER_24_H)

    order.refresh_from_db()
    assert order.status == S.AWAITING_CONFIRMATION
    assert not OrderEvent.objects.filter(order=order, type="cancelled").exists()


def test_a_high_value_order_unconfirmed_for_24_hours_is_queued_for_an_agent_with_priority_90(
    awaiting, sweep_after
):
    order = awaiting(total_amount=Decimal("1500.00"))
    sweep_after(timedelta(minutes=31))
    sweep_after(timedelta(hours=2, minutes=1))

    sweep_after(JUST_AFTER_24_H)

    entry = open_entry(order)
    assert (entry.priority, entry.reason) == (90, "high-value order unconfirmed for 24 h")


def test_an_unclear_reply_puts_the_order_in_the_queue(awaiting, reply, django_capture_on_commit_callbacks):
    order = awaiting()

    with django_capture_on_commit_callbacks(execute=True):
        inbound = reply(order, "c'est combien la livraison ?")

    assert inbound.intent == "other"
    entry = open_entry(order)
    assert (entry.priority, entry.reason) == (70, "the customer's answer needs a human")
    order.refresh_from_db()
    assert order.status == S.AWAITING_CONFIRMATION


def test_a_clear_reply_puts_nothing_in_the_queue(awaiting, reply, django_capture_on_commit_callbacks):
    order = awaiting()

    with django_capture_on_commit_callbacks(execute=True):
        reply(order, "Oui, je confirme")

    assert not QueueEntry.objects.filter(order=order).exists()


def test_no_carrier_news_for_72_hours_alerts_the_team_and_queues_the_order(sweep_after):
    order = order_in_status(S.SHIPPED)

    sweep_after(timedelta(hours=72, minutes=1))

    alert = OrderEvent.objects.get(order=order, type="automation_team_alerted")
    assert alert.payload["text"] == "no carrier news for 72 hours"
    entry = open_entry(order)
    assert (entry.priority, entry.reason) == (60, "no carrier news for 72 hours")


def test_carrier_news_within_72_hours_starts_the_wait_again(sweep_after):
    order = order_in_status(S.SHIPPED)
    with time_machine.travel(timezone.now() + timedelta(hours=70), tick=False):
        order_transition(order, "mark_in_transit", source=OrderEvent.Source.CARRIER)

    sweep_after(timedelta(hours=72, minutes=1))

    assert not OrderEvent.objects.filter(order=order, type="automation_team_alerted").exists()
    assert not QueueEntry.objects.filter(order=order).exists()
