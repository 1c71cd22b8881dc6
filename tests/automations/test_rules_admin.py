"""The rules in admin: list and filters, the editor (validated, versioned, with its history), the
enable/disable actions, the dry run (which changes nothing), and the read-only timers and sweeps."""

import json
from datetime import timedelta
from decimal import Decimal
from html import escape
from urllib.parse import urlencode

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from automations.forms import ACTION_TYPES, CONDITION_FIELDS, EXAMPLE_RULE
from automations.models import QueueEntry, Rule, RuleRevision, SweepRun, Timer, Trigger
from automations.services.actions import ACTIONS, action_problems
from automations.services.conditions import FIELDS, condition_problems
from automations.services.rules import (
    ACTS,
    CONDITIONS_FAIL,
    NOT_IN_STATUS,
    rule_dry_run,
    rule_save,
)
from messaging.models import Message, MessageTemplate, Notification
from orders.models import OrderEvent, Store
from orders.transitions import OrderStatus
from tests.factories import OrderFactory, StoreFactory, UserFactory, grant, order_in_status

pytestmark = pytest.mark.django_db

S = OrderStatus
EDITOR_PERMISSIONS = (
    "automations.view_rule",
    "automations.add_rule",
    "automations.change_rule",
    "automations.view_rulerevision",
)


# --- helpers ---------------------------------------------------------------------------------
def editor(client):
    user = grant(UserFactory(stores=Store.objects.all()), *EDITOR_PERMISSIONS)
    client.force_login(user)
    return user


def viewer(client):
    user = grant(UserFactory(stores=Store.objects.all()), "automations.view_rule")
    client.force_login(user)
    return user


def dry_runner(client):
    user = grant(UserFactory(stores=Store.objects.all()), "automations.view_rule", "automations.dry_run_rule")
    client.force_login(user)
    return user


def changelist_url(**query) -> str:
    url = reverse("admin:automations_rule_changelist")
    return url + ("?" + urlencode(query) if query else "")


def change_url(rule) -> str:
    return reverse("admin:automations_rule_change", args=[rule.pk])


def dry_run_url(rule, **query) -> str:
    url = reverse("admin:automations_rule_dry_run", args=[rule.pk])
    return url + ("?" + urlencode(query) if query else "")


def listed(response) -> list:
    return list(response.context["cl"].result_list)


def flashed(response) -> list[str]:
    return [message.message for message in response.context["messages"]]


def rule_for(store, **fields) -> Rule:
    """A rule saved as the admin saves it (through rule_save): waiting 45 min for an answer."""
    values = {
        "name": "Ask again after 45 min",
        "position": 15,
        "trigger": Trigger.IN_STATUS_FOR,
        "status": S.AWAITING_CONFIRMATION,
        "delay_minutes": 45,
        "actions": [{"type": "notify", "event": "confirmation_requested"}],
        **fields,
    }
    return rule_save(Rule(store=store, **values), actor=None)


def form_data(rule: Rule, **changes) -> dict:
    """What the change form posts for ``rule`` with ``changes`` typed in."""
    values = {
        "name": rule.name,
        "position": rule.position,
        "enabled": rule.enabled,
        "trigger": rule.trigger,
        "status": rule.status,
        "delay_minutes": rule.delay_minutes or "",
        "intent": rule.intent,
        "conditions": json.dumps(rule.conditions),
        "actions": json.dumps(rule.actions),
        "loaded_version": rule.version,
        **changes,
    }
    if values.pop("enabled"):
        values["enabled"] = "on"  # an unchecked box is not posted at all
    for name in ("conditions", "actions"):
        if not isinstance(values[name], str):
            values[name] = json.dumps(values[name])
    return values


def form_errors(response) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {name: list(errors) for name, errors in form.errors.items()}


def world_snapshot(*orders) -> dict:
    """Everything a rule could have changed: events, outbox, queue, timers, statuses, tags."""
    return {
        "events": OrderEvent.objects.count(),
        "notifications": Notification.objects.count(),
        "messages": Message.objects.count(),
        "queue": QueueEntry.objects.count(),
        "timers": list(Timer.objects.order_by("pk").values_list("pk", "state")),
        "orders": [
            (order.pk, order.status, order.status_version, order.tags)
            for order in type(orders[0]).objects.filter(pk__in=[o.pk for o in orders]).order_by("pk")
        ],
    }


# --- the list --------------------------------------------------------------------------------
def test_the_rule_list_shows_position_name_store_trigger_enabled_and_version(client):
    store = StoreFactory(name="Atlas Souk")
    rule = rule_for(store)
    viewer(client)

    response = client.get(changelist_url(store__id__exact=store.pk))

    page = response.content.decode()
    assert rule in listed(response)
    assert "in Awaiting confirmation for 45 min" in page
    assert "Atlas Souk" in page
    assert "no carrier news for 72 h" in page  # a default rule of the store


def test_the_rule_list_is_ordered_by_store_then_position(client):
    second, first = StoreFactory(name="Zagora Shop"), StoreFactory(name="Agadir Shop")
    viewer(client)

    response = client.get(changelist_url())

    keys = [(rule.store.name, rule.position) for rule in listed(response)]
    assert keys == sorted(keys)
    assert {first.name, second.name} <= {name for name, _ in keys}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"trigger__exact": "reply_intent"}, {"unclear-reply-to-queue", "unclear-reply-acknowledge"}),
        ({"trigger__exact": "shipment_stale"}, {"shipment-stale"}),
        ({"enabled__exact": "0"}, {"cod-queue"}),
    ],
)
def test_the_rule_list_filters_by_trigger_and_enabled(client, query, expected):
    store = StoreFactory()
    Rule.objects.filter(store=store, key="cod-queue").update(enabled=False)
    viewer(client)

    response = client.get(changelist_url(store__id__exact=store.pk, **query))

    assert {rule.key for rule in listed(response)} == expected


def test_the_rule_list_filters_by_store(client):
    store, other = StoreFactory(), StoreFactory()
    viewer(client)

    response = client.get(changelist_url(store__id__exact=other.pk))

    assert {rule.store_id for rule in listed(response)} == {other.pk}
    assert Rule.objects.filter(store=store).exists()


def test_the_rule_list_costs_the_same_queries_for_one_store_or_many(client):
    StoreFactory()
    viewer(client)
    with CaptureQueriesContext(connection) as one_store:
        client.get(changelist_url())
    StoreFactory(), StoreFactory(), StoreFactory()

    with CaptureQueriesContext(connection) as four_stores:
        client.get(changelist_url())

    assert len(four_stores) == len(one_store)


def test_a_user_without_rule_permissions_gets_403_on_the_rules(client):
    rule = rule_for(StoreFactory())
    client.force_login(UserFactory())

    assert client.get(changelist_url()).status_code == 403
    assert client.get(change_url(rule)).status_code == 403
    assert client.get(dry_run_url(rule)).status_code == 403


# --- the editor ------------------------------------------------------------------------------
def test_the_editor_explains_every_condition_field_and_action_type_with_an_example(client):
    rule = rule_for(StoreFactory())
    editor(client)

    page = client.get(change_url(rule)).content.decode()

    for field, ops in FIELDS.items():
        assert f"<code>{field}</code>" in page
        assert escape(json.dumps(CONDITION_FIELDS[field][1], ensure_ascii=False)) in page
        assert ", ".join(ops) in page
    for kind in ACTIONS:
        assert f"<code>{kind}</code>" in page
        assert escape(json.dumps(ACTION_TYPES[kind][1], ensure_ascii=False)) in page


def test_every_example_in_the_help_is_a_valid_condition_or_action():
    rule = Rule(store=StoreFactory(), **EXAMPLE_RULE)

    assert set(CONDITION_FIELDS) == set(FIELDS)
    assert set(ACTION_TYPES) == set(ACTIONS)
    for _, example in CONDITION_FIELDS.values():
        assert condition_problems(example) == []
    for _, example in ACTION_TYPES.values():
        assert action_problems(rule, example) == []


def test_a_transition_that_can_never_apply_from_the_status_is_refused_with_the_reason(client):
    # given a rule for orders entering "awaiting confirmation"
    rule = rule_for(StoreFactory(), trigger=Trigger.ENTERED_STATUS, delay_minutes=None)
    editor(client)

    # when someone makes it ship them
    response = client.post(
        change_url(rule), form_data(rule, actions=[{"type": "transition", "name": "ship"}])
    )

    # then the page says why and nothing is saved
    assert response.status_code == 200
    assert form_errors(response)["actions"] == [
        "action 1 (transition): ship can never apply to an order in awaiting_confirmation "
        "(it applies from confirmed, processing)"
    ]
    rule.refresh_from_db()
    assert rule.actions == [{"type": "notify", "event": "confirmation_requested"}]
    assert rule.version == 1
    assert rule.revisions.count() == 1


def test_a_notification_for_an_event_without_a_template_is_refused(client):
    MessageTemplate.objects.filter(event="order_refunded").delete()
    rule = rule_for(StoreFactory())
    editor(client)

    response = client.post(
        change_url(rule),
        form_data(rule, actions=[{"type": "notify", "event": "order_refunded", "policy": "all_opted_in"}]),
    )

    assert response.status_code == 200
    assert "no template for &#x27;order_refunded&#x27;" in response.content.decode()
    rule.refresh_from_db()
    assert rule.version == 1
    assert rule.actions[0]["event"] == "confirmation_requested"


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"actions": "[{'type': 'queue'}"}, "actions", "Enter a valid JSON."),
        ({"conditions": {"field": "weather", "op": "eq", "value": "sunny"}}, "conditions", "unknown field"),
        ({"status": ""}, "status", "this trigger needs a status"),
        ({"delay_minutes": ""}, "delay_minutes", "this trigger needs a delay in minutes"),
        ({"actions": []}, "actions", ""),
    ],
)
def test_an_invalid_rule_shows_the_problem_on_its_field_and_is_not_saved(client, changes, field, problem):
    rule = rule_for(StoreFactory())
    editor(client)

    response = client.post(change_url(rule), form_data(rule, **changes))

    assert response.status_code == 200
    assert field in form_errors(response)
    assert any(problem in error for error in form_errors(response)[field])
    assert Rule.objects.get(pk=rule.pk).version == 1


def test_a_valid_edit_bumps_the_version_and_keeps_a_revision_by_the_editor(client):
    rule = rule_for(StoreFactory())
    user = editor(client)
    queue = {"type": "queue", "priority": 80, "reason": "call them"}

    response = client.post(change_url(rule), form_data(rule, delay_minutes=60, actions=[queue]))

    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.version, rule.delay_minutes, rule.actions) == (2, 60, [queue])
    revision = rule.revisions.get(version=2)
    assert revision.changed_by == user
    assert revision.snapshot["delay_minutes"] == 60
    assert revision.snapshot["actions"] == [queue]


def test_the_rule_page_shows_its_history_newest_first_with_who_and_what_changed(client):
    rule = rule_for(StoreFactory())
    user = editor(client)
    client.post(change_url(rule), form_data(rule, name="Ask again after 1 h", delay_minutes=60))

    page = client.get(change_url(rule)).content.decode()

    history = page[page.index('class="rule-history"') :]
    assert history.index("v2") < history.index("v1")
    assert user.username in history
    assert "delay_minutes: 45 → 60" in history
    assert "first version" in history


def test_the_history_is_not_shown_to_who_may_not_view_revisions(client):
    rule = rule_for(StoreFactory())
    viewer(client)

    page = client.get(change_url(rule)).content.decode()

    assert 'class="rule-history"' not in page


def test_saving_a_rule_unchanged_writes_no_new_version(client):
    rule = rule_for(StoreFactory())
    editor(client)

    response = client.post(change_url(rule), form_data(rule))

    assert response.status_code == 302
    assert Rule.objects.get(pk=rule.pk).version == 1
    assert rule.revisions.count() == 1


def test_an_edit_started_from_an_older_version_is_refused(client):
    rule = rule_for(StoreFactory())
    editor(client)
    opened = form_data(rule, position=99)
    fresh = Rule.objects.get(pk=rule.pk)
    fresh.name = "Changed by someone else"
    rule_save(fresh, actor=None)

    response = client.post(change_url(rule), opened)

    assert response.status_code == 200
    assert "changed since you opened it" in response.content.decode()
    rule.refresh_from_db()
    assert (rule.version, rule.position, rule.name) == (2, 15, "Changed by someone else")


def test_adding_a_rule_saves_version_1_with_its_revision(client):
    store = StoreFactory()
    user = editor(client)
    data = {
        "store": store.pk,
        "name": "Tag first orders",
        "position": 5,
        "enabled": "on",
        "trigger": Trigger.ENTERED_STATUS,
        "status": S.AWAITING_CONFIRMATION,
        "delay_minutes": "",
        "intent": "",
        "conditions": json.dumps({"field": "first_order", "op": "eq", "value": True}),
        "actions": json.dumps([{"type": "tag", "add": "first-order"}]),
    }

    response = client.post(reverse("admin:automations_rule_add"), data)

    assert response.status_code == 302
    rule = Rule.objects.get(store=store, name="Tag first orders")
    assert rule.version == 1
    assert rule.revisions.get().changed_by == user


def test_a_view_only_user_cannot_save_a_rule(client):
    rule = rule_for(StoreFactory())
    viewer(client)

    response = client.post(change_url(rule), form_data(rule, name="Renamed"))

    assert response.status_code == 403
    assert Rule.objects.get(pk=rule.pk).name == "Ask again after 45 min"


def test_rules_cannot_be_deleted_from_admin_only_disabled(client):
    rule = rule_for(StoreFactory())
    client.force_login(UserFactory(is_superuser=True))

    response = client.post(reverse("admin:automations_rule_delete", args=[rule.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert Rule.objects.filter(pk=rule.pk).exists()


# --- enable / disable ------------------------------------------------------------------------
def test_disabling_rules_from_the_list_goes_through_a_new_version(client):
    rule = rule_for(StoreFactory())
    user = editor(client)

    client.post(changelist_url(), {"action": "disable_rules", "_selected_action": [rule.pk]})

    rule.refresh_from_db()
    assert (rule.enabled, rule.version) == (False, 2)
    assert rule.revisions.get(version=2).changed_by == user


def test_a_rule_that_became_invalid_can_still_be_disabled_but_not_enabled(client):
    # given a rule whose template was deleted after it was saved
    rule = rule_for(StoreFactory(), actions=[{"type": "notify", "event": "order_refunded"}])
    MessageTemplate.objects.filter(event="order_refunded").delete()
    editor(client)

    # when it is disabled, then enabled again
    client.post(changelist_url(), {"action": "disable_rules", "_selected_action": [rule.pk]})
    response = client.post(
        changelist_url(), {"action": "enable_rules", "_selected_action": [rule.pk]}, follow=True
    )

    # then it stays disabled, and the page says why
    rule.refresh_from_db()
    assert (rule.enabled, rule.version) == (False, 2)
    assert any("was not enabled" in text and "no template" in text for text in flashed(response))


def test_a_view_only_user_cannot_enable_or_disable_rules(client):
    rule = rule_for(StoreFactory())
    viewer(client)

    client.post(changelist_url(), {"action": "disable_rules", "_selected_action": [rule.pk]})

    rule.refresh_from_db()
    assert (rule.enabled, rule.version) == (True, 1)


def test_the_store_admin_group_may_edit_and_dry_run_rules(client):
    rule = rule_for(StoreFactory())
    client.force_login(UserFactory(groups=["Store admin"], stores=Store.objects.all()))

    page = client.get(change_url(rule)).content.decode()
    response = client.post(change_url(rule), form_data(rule, delay_minutes=50))

    assert dry_run_url(rule) in page
    assert response.status_code == 302
    assert Rule.objects.get(pk=rule.pk).version == 2


# --- rule_save -------------------------------------------------------------------------------
def test_rule_save_raises_the_problems_by_field():
    rule = Rule(store=StoreFactory(), name="broken", trigger=Trigger.REPLY_INTENT, actions=[])

    with pytest.raises(ValidationError) as refused:
        rule_save(rule, actor=None)

    assert set(refused.value.message_dict) == {"intent", "actions"}
    assert rule.pk is None


def test_rule_save_refuses_an_edit_started_from_an_older_version():
    rule = rule_for(StoreFactory())
    rule.name = "Renamed"
    rule_save(rule, actor=None)
    rule.position = 99

    with pytest.raises(ValidationError) as refused:
        rule_save(rule, actor=None, expected_version=1)

    assert refused.value.code == "stale"
    assert Rule.objects.get(pk=rule.pk).position == 15


def test_rule_save_keeps_a_rule_with_its_store():
    rule = rule_for(StoreFactory())
    rule.store = StoreFactory()

    with pytest.raises(ValidationError) as refused:
        rule_save(rule, actor=None)

    assert set(refused.value.message_dict) == {"store"}


def test_rule_save_without_a_change_writes_nothing():
    rule = rule_for(StoreFactory())

    rule_save(Rule.objects.get(pk=rule.pk), actor=None)

    assert Rule.objects.get(pk=rule.pk).version == 1
    assert rule.revisions.count() == 1


def test_disabling_a_default_rule_shows_in_its_history_as_enabled_true_to_false(client):
    rule = Rule.objects.get(store=StoreFactory(), key="cod-reminder")
    editor(client)

    client.post(changelist_url(), {"action": "disable_rules", "_selected_action": [rule.pk]})
    page = client.get(change_url(rule)).content.decode()

    assert "enabled: True → False" in page
    assert "Livra" in page[page.index('class="rule-history"') :]  # v1 was made by Livra itself


# --- dry run ---------------------------------------------------------------------------------
def rule_that_does_everything(store) -> Rule:
    return rule_for(
        store,
        name="Chase small orders",
        conditions={"field": "total_amount", "op": "lte", "value": "999.99"},
        actions=[
            {"type": "notify", "event": "confirmation_requested", "policy": "all_opted_in"},
            {"type": "tag", "add": "chased"},
            {"type": "queue", "priority": 80, "reason": "no answer in 45 min"},
            {"type": "team_alert", "text": "chasing"},
            {"type": "cancel", "reason": "no answer"},
        ],
    )


def test_the_dry_run_page_shows_the_form_and_runs_nothing_until_asked(client):
    rule = rule_for(StoreFactory())
    dry_runner(client)

    response = client.get(dry_run_url(rule))

    assert response.status_code == 200
    assert response.context["ran"] is False
    assert 'id="dry-run-form"' in response.content.decode()


def test_a_dry_run_for_one_order_lists_what_the_rule_would_do_and_changes_nothing(client):
    store = StoreFactory()
    rule = rule_that_does_everything(store)
    order = order_in_status(S.AWAITING_CONFIRMATION, store=store, number="#2001")
    before = world_snapshot(order)
    dry_runner(client)

    response = client.get(dry_run_url(rule, order="2001"))

    assert response.status_code == 200
    [row] = [item["row"] for item in response.context["rows"]]
    assert (row.order, row.outcome) == (order, ACTS)
    assert row.lines == (
        "send confirmation_requested (all opted in)",
        "tag +chased",
        "put in the confirmation queue (priority 80): no answer in 45 min",
        "alert the team: chasing",
        "apply cancel",
    )
    assert "put in the confirmation queue (priority 80): no answer in 45 min" in response.content.decode()
    assert world_snapshot(order) == before


def test_a_dry_run_over_n_days_says_for_each_order_what_would_happen(client):
    store = StoreFactory()
    rule = rule_that_does_everything(store)
    small = order_in_status(S.AWAITING_CONFIRMATION, store=store)
    large = order_in_status(S.AWAITING_CONFIRMATION, store=store, total_amount=Decimal("1500.00"))
    confirmed = order_in_status(S.CONFIRMED, store=store)
    too_old = order_in_status(
        S.AWAITING_CONFIRMATION, store=store, placed_at=timezone.now() - timedelta(days=8)
    )
    other_store = order_in_status(S.AWAITING_CONFIRMATION)
    before = world_snapshot(small, large, confirmed, too_old, other_store)
    dry_runner(client)

    response = client.post(dry_run_url(rule), {"days": "7"})

    outcomes = {item["row"].order: item["row"].outcome for item in response.context["rows"]}
    assert outcomes == {small: ACTS, large: CONDITIONS_FAIL, confirmed: NOT_IN_STATUS}
    page = response.content.decode()
    assert "conditions do not hold" in page
    assert "not in the rule&#x27;s status" in page
    assert world_snapshot(small, large, confirmed, too_old, other_store) == before


def test_a_dry_run_for_days_lists_the_orders_the_rule_can_reach_first():
    store = StoreFactory()
    rule = rule_for(store)
    reachable = order_in_status(
        S.AWAITING_CONFIRMATION, store=store, placed_at=timezone.now() - timedelta(days=2)
    )
    order_in_status(S.CONFIRMED, store=store)

    rows = rule_dry_run(rule, days=7, limit=1)

    assert [(row.order, row.outcome) for row in rows] == [(reachable, ACTS)]


def test_a_dry_run_of_a_reply_rule_reaches_orders_in_any_status():
    store = StoreFactory()
    rule = Rule.objects.get(store=store, key="unclear-reply-to-queue")
    order = order_in_status(S.CONFIRMED, store=store)

    [row] = rule_dry_run(rule, order=order)

    assert row.outcome == ACTS
    assert row.lines == ("put in the confirmation queue (priority 70): the customer's answer needs a human",)


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"days": "91"}, "Ensure this value is less than or equal to 90."),
        ({"order": "#9999"}, "has no order with the number or id #9999"),
        ({"order": "#2001", "days": "3"}, "not both"),
    ],
)
def test_a_dry_run_asked_for_wrongly_says_why(client, query, problem):
    store = StoreFactory()
    rule = rule_for(store)
    order_in_status(S.AWAITING_CONFIRMATION, store=store, number="#2001")
    dry_runner(client)

    response = client.get(dry_run_url(rule, **query))

    assert response.status_code == 400
    assert escape(problem) in response.content.decode()
    assert response.context["ran"] is False


def test_a_dry_run_cannot_reach_an_order_of_another_store(client):
    rule = rule_for(StoreFactory())
    elsewhere = OrderFactory(number="#3001")
    dry_runner(client)

    response = client.get(dry_run_url(rule, order=elsewhere.pk))

    assert response.status_code == 400
    assert response.context["ran"] is False


def test_without_the_dry_run_permission_there_is_no_link_and_the_page_is_forbidden(client):
    store = StoreFactory()
    rule = rule_for(store)
    order = order_in_status(S.AWAITING_CONFIRMATION, store=store)
    editor(client)

    page = client.get(change_url(rule)).content.decode()
    response = client.get(dry_run_url(rule, order=order.pk))

    assert dry_run_url(rule) not in page
    assert response.status_code == 403


# --- timers and sweep runs -------------------------------------------------------------------
def timer_viewer(client):
    user = grant(
        UserFactory(stores=Store.objects.all()), "automations.view_timer", "automations.view_sweeprun"
    )
    client.force_login(user)
    return user


def test_the_timer_list_shows_order_rule_status_due_time_state_and_outcome(client):
    store = StoreFactory()
    order = order_in_status(S.AWAITING_CONFIRMATION, store=store, number="#4001")
    Timer.objects.filter(order=order, rule__key="cod-queue").update(
        state="dead", outcome="the order moved on"
    )
    timer_viewer(client)

    response = client.get(reverse("admin:automations_timer_changelist"), {"state__exact": "dead"})

    page = response.content.decode()
    assert [timer.rule.key for timer in listed(response)] == ["cod-queue"]
    assert reverse("admin:orders_order_change", args=[order.pk]) in page
    assert "the order moved on" in page


def test_the_timer_list_filters_by_rule(client):
    store = StoreFactory()
    order_in_status(S.AWAITING_CONFIRMATION, store=store)
    reminder = Rule.objects.get(store=store, key="cod-reminder")
    timer_viewer(client)

    response = client.get(reverse("admin:automations_timer_changelist"), {"rule__id__exact": reminder.pk})

    assert {timer.rule_id for timer in listed(response)} == {reminder.pk}


def test_timers_and_sweep_runs_are_read_only_even_for_a_superuser(client):
    order = order_in_status(S.AWAITING_CONFIRMATION)
    timer = Timer.objects.filter(order=order).first()
    run = SweepRun.objects.create(started_at=timezone.now(), fired=1)
    client.force_login(UserFactory(is_superuser=True))

    for model, item in (("timer", timer), ("sweeprun", run)):
        change = reverse(f"admin:automations_{model}_change", args=[item.pk])
        assert client.get(reverse(f"admin:automations_{model}_add")).status_code == 403
        assert client.post(change, {}).status_code == 403
        assert client.post(reverse(f"admin:automations_{model}_delete", args=[item.pk])).status_code == 403
        assert 'name="_save"' not in client.get(change).content.decode()


def test_the_sweep_run_list_shows_its_counts_and_the_page_its_errors_to_superusers(client):
    run = SweepRun.objects.create(
        started_at=timezone.now(),
        finished_at=timezone.now(),
        fired=12,
        skipped=3,
        errors=1,
        error_text="timer 7: ValueError('boom')",
    )
    client.force_login(UserFactory(is_superuser=True))  # a run counts every store's timers

    listing = client.get(reverse("admin:automations_sweeprun_changelist"))
    detail = client.get(reverse("admin:automations_sweeprun_change", args=[run.pk]))

    assert listed(listing) == [run]
    assert escape("timer 7: ValueError('boom')") in detail.content.decode()


def test_rule_revisions_are_read_only(client):
    rule = rule_for(StoreFactory())
    revision = RuleRevision.objects.get(rule=rule)
    client.force_login(UserFactory(is_superuser=True))

    response = client.post(reverse("admin:automations_rulerevision_change", args=[revision.pk]), {})

    assert response.status_code == 403
    assert client.get(reverse("admin:automations_rulerevision_add")).status_code == 403
