"""Rule validation: what ``rule_problems`` refuses, and with which message."""

import pytest

from automations.models import Rule, Trigger
from automations.services.engine import rule_problems
from messaging.models import MessageTemplate
from orders.transitions import OrderStatus
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

S = OrderStatus
QUEUE = {"type": "queue", "priority": 50, "reason": "call the customer"}


def rule(store, **fields) -> Rule:
    """An unsaved rule of ``store``: entered awaiting_confirmation → queue, unless told otherwise."""
    values = {
        "name": "Test rule",
        "trigger": Trigger.ENTERED_STATUS,
        "status": S.AWAITING_CONFIRMATION,
        "actions": [QUEUE],
    }
    return Rule(store=store, **{**values, **fields})


def notify(event: str) -> dict:
    return {"type": "notify", "event": event, "policy": "first_delivered"}


# --- valid rules ------------------------------------------------------------------------------
def test_a_valid_rule_has_no_problems(store):
    valid = rule(
        store,
        trigger=Trigger.IN_STATUS_FOR,
        delay_minutes=60,
        conditions={"all": [{"field": "payment_method", "op": "eq", "value": "cod"}]},
        actions=[QUEUE, {"type": "tag", "add": "late"}, {"type": "transition", "name": "cancel"}],
    )

    assert rule_problems(valid) == []


def test_a_transition_from_the_status_the_trigger_waits_in_is_accepted(store):
    assert (
        rule_problems(rule(store, status=S.CONFIRMED, actions=[{"type": "transition", "name": "ship"}])) == []
    )


def test_a_notify_for_an_event_with_a_template_of_the_store_is_accepted(store):
    MessageTemplate.objects.filter(event="delivery_rescheduled").delete()
    MessageTemplate.objects.create(
        store=store, event="delivery_rescheduled", channel="whatsapp", language="fr", body="On repasse."
    )

    assert rule_problems(rule(store, actions=[notify("delivery_rescheduled")])) == []


def test_a_notify_for_an_event_with_only_the_default_templates_is_accepted(store):
    assert MessageTemplate.objects.filter(event="confirmation_requested", store=None).exists()

    assert rule_problems(rule(store, actions=[notify("confirmation_requested")])) == []


# --- transitions ------------------------------------------------------------------------------
def test_a_transition_that_can_never_apply_from_the_trigger_status_is_refused(store):
    shipping = rule(store, status=S.AWAITING_CONFIRMATION, actions=[{"type": "transition", "name": "ship"}])

    assert rule_problems(shipping) == [
        "ship can never apply to an order in awaiting_confirmation (it applies from confirmed, processing)"
    ]


def test_a_cancel_that_can_never_apply_after_a_wait_in_the_status_is_refused(store):
    cancelling = rule(
        store,
        trigger=Trigger.IN_STATUS_FOR,
        status=S.SHIPPED,
        delay_minutes=60,
        actions=[{"type": "cancel", "reason": "too slow"}],
    )

    assert rule_problems(cancelling) == [
        "cancel can never apply to an order in shipped "
        "(it applies from placed, awaiting_confirmation, confirmed, processing)"
    ]


def test_a_transition_that_can_never_apply_to_an_order_in_flight_is_refused_on_a_shipment_stale_rule(store):
    confirming = rule(
        store,
        trigger=Trigger.SHIPMENT_STALE,
        status="",
        delay_minutes=60,
        actions=[{"type": "transition", "name": "confirm"}],
    )

    assert rule_problems(confirming) != []


def test_an_unknown_transition_is_refused(store):
    assert rule_problems(rule(store, actions=[{"type": "transition", "name": "teleport"}])) == [
        "unknown transition 'teleport'"
    ]


# --- notifications ----------------------------------------------------------------------------
def test_a_notify_for_an_event_without_any_template_is_refused(store):
    MessageTemplate.objects.filter(event="delivery_rescheduled").delete()

    assert rule_problems(rule(store, actions=[notify("delivery_rescheduled")])) == [
        "no template for 'delivery_rescheduled': add one before a rule sends it"
    ]


def test_a_notify_for_an_event_with_a_template_of_another_store_only_is_refused(store):
    MessageTemplate.objects.filter(event="delivery_rescheduled").delete()
    MessageTemplate.objects.create(
        store=StoreFactory(),
        event="delivery_rescheduled",
        channel="whatsapp",
        language="fr",
        body="On repasse.",
    )

    assert rule_problems(rule(store, actions=[notify("delivery_rescheduled")])) == [
        "no template for 'delivery_rescheduled': add one before a rule sends it"
    ]


def test_a_notify_for_an_unknown_event_is_refused(store):
    problems = rule_problems(rule(store, actions=[notify("birthday_wishes")]))

    assert problems == ["unknown event 'birthday_wishes'"]


def test_a_notify_with_an_unknown_channel_policy_is_refused(store):
    MessageTemplate.objects.create(
        store=store, event="order_shipped", channel="sms", language="fr", body="En route."
    )
    shouting = {"type": "notify", "event": "order_shipped", "policy": "every_channel_twice"}

    assert rule_problems(rule(store, actions=[shouting])) == [
        "channel policy is one of first_delivered, all_opted_in"
    ]


@pytest.mark.parametrize("minutes", [0, -5, "30", 2.5, True])
def test_a_notify_limit_that_is_not_a_whole_number_of_minutes_is_refused(store, minutes):
    limited = {**notify("reply_received"), "at_most_every_minutes": minutes}

    assert rule_problems(rule(store, actions=[limited])) == [
        "at_most_every_minutes is a whole number of minutes, 1 or more"
    ]


def test_a_notify_limited_to_once_in_30_minutes_is_accepted(store):
    limited = {**notify("reply_received"), "at_most_every_minutes": 30}

    assert rule_problems(rule(store, actions=[limited])) == []


# --- other actions ----------------------------------------------------------------------------
def test_a_rule_without_actions_is_refused(store):
    assert rule_problems(rule(store, actions=[])) == ["a rule needs at least one action"]


def test_an_unknown_action_type_is_refused(store):
    [problem] = rule_problems(rule(store, actions=[{"type": "fax"}]))

    assert problem.startswith("unknown action {'type': 'fax'}: one of notify, transition, cancel")


def test_queueing_without_a_reason_for_the_agent_is_refused(store):
    assert rule_problems(rule(store, actions=[{"type": "queue", "reason": "  "}])) == [
        "putting an order in the queue needs a reason for the agent"
    ]


def test_a_tag_action_that_neither_adds_nor_removes_is_refused(store):
    assert rule_problems(rule(store, actions=[{"type": "tag"}])) == ["a tag action adds or removes a tag"]


# --- conditions -------------------------------------------------------------------------------
def test_an_unknown_condition_field_is_refused(store):
    [problem] = rule_problems(rule(store, conditions={"field": "zodiac_sign", "op": "eq", "value": "leo"}))

    assert problem.startswith("unknown field 'zodiac_sign' (one of payment_method, total_amount,")


def test_an_operator_the_field_does_not_take_is_refused(store):
    problems = rule_problems(rule(store, conditions={"field": "city", "op": "gte", "value": "Rabat"}))

    assert problems == ["city takes eq, ne, in, not 'gte'"]


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        (
            {"field": "total_amount", "op": "gte", "value": "lots"},
            "total_amount: 'lots' is not a valid value",
        ),
        (
            {"field": "time_of_day", "op": "between", "value": ["25:00", "09:00"]},
            "time_of_day: '25:00' is not a valid value",
        ),
        (
            {"field": "past_returns", "op": "gte", "value": "many"},
            "past_returns: 'many' is not a valid value",
        ),
        ({"field": "first_order", "op": "eq", "value": "yes"}, "first_order takes true or false"),
        (
            {"field": "total_amount", "op": "between", "value": ["100"]},
            "total_amount between takes [low, high]",
        ),
        ({"field": "city", "op": "in", "value": []}, "city in takes a non-empty list"),
        (
            {"field": "status", "op": "in", "value": ["confirmed", "shipped_twice"]},
            "status 'shipped_twice' is not one of " + ", ".join(S.values),
        ),
        (
            {"field": "told", "op": "has", "value": "birthday_wishes"},
            "told: 'birthday_wishes' is not an event customers are told",
        ),
    ],
)
def test_a_condition_value_the_field_cannot_read_is_refused(store, condition, problem):
    assert rule_problems(rule(store, conditions=condition)) == [problem]


def test_an_unknown_payment_method_in_a_condition_is_refused(store):
    assert rule_problems(rule(store, conditions={"field": "payment_method", "op": "eq", "value": "bitcoin"}))


def test_an_unknown_consent_channel_in_a_condition_is_refused(store):
    assert rule_problems(rule(store, conditions={"field": "consent", "op": "has", "value": "pigeon"}))


def test_an_empty_any_is_refused(store):
    assert rule_problems(rule(store, conditions={"any": []})) == ["'any' takes a non-empty list"]


def test_a_problem_deep_in_a_nested_condition_is_found(store):
    nested = {
        "all": [
            {"field": "tag", "op": "has", "value": "vip"},
            {"any": [{"field": "city", "op": "gte", "value": 1}]},
        ]
    }

    assert rule_problems(rule(store, conditions=nested)) == ["city takes eq, ne, in, not 'gte'"]


# --- triggers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("trigger", [Trigger.ENTERED_STATUS, Trigger.IN_STATUS_FOR])
def test_a_status_trigger_without_a_status_is_refused(store, trigger):
    assert "this trigger needs a status" in rule_problems(
        rule(store, trigger=trigger, status="", delay_minutes=60)
    )


@pytest.mark.parametrize(
    ("trigger", "status"), [(Trigger.IN_STATUS_FOR, S.PLACED), (Trigger.SHIPMENT_STALE, "")]
)
@pytest.mark.parametrize("delay_minutes", [None, 0])
def test_a_timer_trigger_without_a_delay_is_refused(store, trigger, status, delay_minutes):
    waiting = rule(store, trigger=trigger, status=status, delay_minutes=delay_minutes)

    assert rule_problems(waiting) == ["this trigger needs a delay in minutes"]


@pytest.mark.parametrize("trigger", [Trigger.REPLY_INTENT, Trigger.LATE_REPLY])
@pytest.mark.parametrize("intent", ["", "maybe", "opt_out"])
def test_a_reply_trigger_without_a_valid_intent_is_refused(store, trigger, intent):
    replying = rule(store, trigger=trigger, status="", intent=intent)

    assert rule_problems(replying) == ["a reply rule needs the intent: confirm, cancel or unclear"]


@pytest.mark.parametrize("trigger", [Trigger.REPLY_INTENT, Trigger.LATE_REPLY])
@pytest.mark.parametrize("intent", ["confirm", "cancel", "unclear"])
def test_a_reply_trigger_with_a_known_intent_is_accepted(store, trigger, intent):
    assert rule_problems(rule(store, trigger=trigger, status="", intent=intent)) == []
