"""Queue entries close by themselves once the order has settled them: it leaves awaiting
confirmation, whoever moved it (customer, agent, store, rule), or it ends. In the status change's
transaction, with who or what closed them on the entry and on the order's timeline."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import transaction

from automations.models import QueueEntry
from orders.models import OrderEvent
from orders.services import order_transition
from orders.transitions import OrderStatus
from tests.factories import UserFactory, grant, order_in_status

pytestmark = pytest.mark.django_db

S = OrderStatus
OPEN, DONE = QueueEntry.State.OPEN, QueueEntry.State.DONE
AGENT, STORE, SYSTEM = OrderEvent.Source.AGENT, OrderEvent.Source.STORE, OrderEvent.Source.SYSTEM


@pytest.fixture
def queued_unanswered(awaiting, sweep_after):
    """An order asked to confirm 2 hours ago without an answer: queued by the default rule."""
    order = awaiting()
    sweep_after(timedelta(hours=2, minutes=1))
    assert QueueEntry.objects.filter(order=order, state=OPEN).exists()
    return order


def entry_of(order) -> QueueEntry:
    return QueueEntry.objects.get(order=order)


def agent_who_may(transition: str):
    return grant(UserFactory(), f"orders.{transition}_order")


# --- every way out of awaiting confirmation ---------------------------------------------------
def test_the_customers_confirm_closes_the_entry_saying_so(queued_unanswered, reply):
    order = queued_unanswered

    reply(order, "oui")

    entry = entry_of(order)
    assert (entry.state, entry.close_reason, entry.closed_by) == (
        DONE,
        "order confirmed by the customer",
        None,
    )
    assert entry.closed_at is not None


def test_the_customers_cancel_closes_the_entry(queued_unanswered, reply):
    reply(queued_unanswered, "2")

    assert entry_of(queued_unanswered).close_reason == "order cancelled by the customer"


@pytest.mark.parametrize(("transition", "done"), [("confirm", "confirmed"), ("cancel", "cancelled")])
def test_an_agents_move_closes_the_entry_in_the_agents_name(queued_unanswered, transition, done):
    agent = agent_who_may(transition)

    order_transition(queued_unanswered, transition, source=AGENT, actor=agent)

    entry = entry_of(queued_unanswered)
    assert (entry.state, entry.closed_by) == (DONE, agent)
    assert entry.close_reason == f"order {done} by agent {agent.username}"


def test_the_stores_cancel_closes_the_entry(queued_unanswered):
    order_transition(queued_unanswered, "cancel", source=STORE)

    assert entry_of(queued_unanswered).close_reason == "order cancelled by the store"


def test_the_24_hour_rule_that_cancels_closes_the_entry_naming_the_rule(queued_unanswered, sweep_after):
    sweep_after(timedelta(hours=24, minutes=1))

    assert entry_of(queued_unanswered).close_reason == (
        "order cancelled by rule 'COD: cancel what stays unconfirmed for 24 h'"
    )


def test_closing_is_on_the_orders_timeline_after_the_status_change(queued_unanswered, reply):
    reply(queued_unanswered, "oui")

    types = list(queued_unanswered.events.order_by("id").values_list("type", flat=True))
    closed = queued_unanswered.events.get(type="queue_entry_closed")
    assert types.index("queue_entry_closed") == types.index("confirmed") + 1
    assert (closed.source, closed.reason) == (SYSTEM, "order confirmed by the customer")
    assert closed.payload["queue_reason"] == "no answer to the confirmation request in 2 h"


def test_a_status_change_rolled_back_leaves_the_entry_open(queued_unanswered):
    with pytest.raises(RuntimeError), transaction.atomic():
        order_transition(queued_unanswered, "confirm", source=SYSTEM)
        raise RuntimeError("the caller failed after the move")

    assert entry_of(queued_unanswered).state == OPEN


# --- entries queued after confirming ----------------------------------------------------------
def cancel_asked_after_confirming(store, reply, status=S.CONFIRMED):
    order = order_in_status(status, store=store)
    reply(order, "annuler")
    reply(order, "2")
    assert entry_of(order).state == OPEN
    return order


def test_an_entry_queued_after_confirming_stays_open_while_the_order_moves_on(store, reply):
    order = cancel_asked_after_confirming(store, reply)

    order_transition(order, "ship", source=SYSTEM)

    assert entry_of(order).state == OPEN  # the customer still wants a call


@pytest.mark.parametrize(
    ("status", "transition", "reason"),
    [
        (S.CONFIRMED, "cancel", "order cancelled by Livra"),
        (S.OUT_FOR_DELIVERY, "deliver", "order delivered by Livra"),
    ],
)
def test_an_entry_queued_after_confirming_closes_once_the_order_ends(
    store, reply, status, transition, reason
):
    order = cancel_asked_after_confirming(store, reply, status)

    order_transition(order, transition, source=SYSTEM)

    assert entry_of(order).close_reason == reason


def test_a_stale_shipment_entry_closes_when_the_parcel_is_delivered(sweep_after):
    order = order_in_status(S.SHIPPED)
    sweep_after(timedelta(hours=72, minutes=1))

    order_transition(order, "deliver", source=OrderEvent.Source.CARRIER)

    assert entry_of(order).close_reason == "order delivered by the carrier"


# --- existing deployments ---------------------------------------------------------------------
def test_the_upgrade_closes_the_entries_orders_had_already_settled(store, awaiting, sweep_after):
    confirmed, still_waiting = awaiting(), awaiting()
    sweep_after(timedelta(hours=2, minutes=1))
    order_transition(confirmed, "confirm", source=SYSTEM)
    # as before this change: the confirmation left the entry open
    QueueEntry.objects.filter(order=confirmed).update(state=OPEN, closed_at=None, close_reason="")

    migration = importlib.import_module("automations.migrations.0006_late_replies_and_queue_closing")
    migration.close_settled_queue_entries(apps, None)

    closed = entry_of(confirmed)
    assert (closed.state, closed.close_reason) == (
        DONE,
        "order already confirmed when queue entries began to close by themselves",
    )
    assert entry_of(still_waiting).state == OPEN
