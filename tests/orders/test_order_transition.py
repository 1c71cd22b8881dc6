"""order_transition: every legal move, every illegal one, and the rules of the one write path."""

from types import SimpleNamespace

import pytest

from messaging.models import Message
from orders.errors import IllegalTransition, StaleOrderStatus, TransitionPermissionDenied, UnknownTransition
from orders.models import OrderEvent
from orders.services import order_transition
from orders.transitions import TRANSITIONS, TRANSITIONS_BY_NAME, OrderStatus, PaymentMethod, shortest_path
from tests.factories import UserFactory, order_in_status

pytestmark = pytest.mark.django_db
SYSTEM = OrderEvent.Source.SYSTEM
# Moves the store's default rules tell the customer nothing about (a prepaid order heard "received"
# when it was placed, so its acceptance is silent).
SILENT_MOVES = {"accept", "start_processing", "mark_in_transit", "initiate_return", "mark_returned"}


def status_events(order):
    """The order's status events, without what its store's rules did on each (automation_*)."""
    return order.events.exclude(type__startswith="automation_")


def reachable(status: str, payment_method: str) -> bool:
    try:
        shortest_path(status, payment_method)
    except ValueError:
        return False
    return True


def allowed(spec, status: str, payment_method: str) -> bool:
    probe = SimpleNamespace(status=status, payment_method=payment_method)
    return status in spec.sources and all(condition(probe) for condition in spec.conditions)


LEGAL_MOVES = [
    pytest.param(spec.name, str(source), method, id=f"{source}-{spec.name}-{method}")
    for spec in TRANSITIONS
    for source in spec.sources
    for method in PaymentMethod.values
    if reachable(source, method) and allowed(spec, source, method)
]

ILLEGAL_MOVES = [
    pytest.param(spec.name, status, method, id=f"{status}-{spec.name}-{method}")
    for spec in TRANSITIONS
    for status in OrderStatus.values
    for method in PaymentMethod.values
    if reachable(status, method) and not allowed(spec, status, method)
]


@pytest.mark.parametrize(("name", "source", "payment_method"), LEGAL_MOVES)
def test_every_legal_move_changes_the_status_and_leaves_one_event(name, source, payment_method):
    order = order_in_status(source, payment_method=payment_method)
    version, events_before = order.status_version, status_events(order).count()

    event = order_transition(order, name, source=SYSTEM, reason="test", payload={"why": "table"})

    order.refresh_from_db()
    assert order.status == TRANSITIONS_BY_NAME[name].target
    assert order.status_version == version + 1
    assert status_events(order).count() == events_before + 1
    assert (event.type, event.transition, event.from_status, event.to_status) == (
        TRANSITIONS_BY_NAME[name].event_type,
        name,
        source,
        order.status,
    )
    assert (event.source, event.actor, event.reason, event.payload) == (
        SYSTEM,
        None,
        "test",
        {"why": "table"},
    )
    assert event.status_version == order.status_version


@pytest.mark.parametrize(("name", "source", "payment_method"), LEGAL_MOVES)
def test_every_customer_facing_move_writes_exactly_one_outbox_message(name, source, payment_method):
    order = order_in_status(source, payment_method=payment_method)
    messages_before = Message.objects.filter(order=order).count()

    order_transition(order, name, source=SYSTEM)

    expected = 0 if name in SILENT_MOVES else 1
    assert Message.objects.filter(order=order).count() == messages_before + expected


@pytest.mark.parametrize(("name", "status", "payment_method"), ILLEGAL_MOVES)
def test_every_illegal_move_is_refused_and_leaves_nothing(name, status, payment_method):
    order = order_in_status(status, payment_method=payment_method)
    events_before, messages_before = order.events.count(), Message.objects.filter(order=order).count()

    with pytest.raises(IllegalTransition):
        order_transition(order, name, source=SYSTEM)

    order.refresh_from_db()
    assert order.status == status
    assert order.events.count() == events_before
    assert Message.objects.filter(order=order).count() == messages_before


# The moves ops people ask about, with the reason each is refused.
NAMED_ILLEGAL_MOVES = [
    ("delivered", "cod", "mark_out_for_delivery"),  # a delivered parcel does not go back out
    ("placed", "prepaid", "request_confirmation"),  # prepaid orders skip COD confirmation
    ("placed", "cod", "accept"),  # COD orders must be confirmed, not accepted
    ("awaiting_confirmation", "cod", "ship"),  # nothing ships unconfirmed
    ("shipped", "cod", "cancel"),  # once shipped, it comes back as a return, not a cancel
    ("cancelled", "cod", "refund"),  # no cash was ever taken
    ("returned", "cod", "refund"),  # RTO of a COD parcel: no cash was ever taken
    ("delivery_failed", "cod", "deliver"),  # it must go out for delivery again first
    ("refunded", "prepaid", "cancel"),  # refunded is final
]


@pytest.mark.parametrize(("status", "payment_method", "name"), NAMED_ILLEGAL_MOVES)
def test_the_named_illegal_moves_are_in_the_illegal_table(status, payment_method, name):
    assert any(p.values == (name, status, payment_method) for p in ILLEGAL_MOVES)


def test_an_illegal_move_says_what_was_refused_in_plain_words():
    order = order_in_status("delivered")
    with pytest.raises(IllegalTransition, match=r"cannot “mark_out_for_delivery” while it is delivered"):
        order_transition(order, "mark_out_for_delivery", source=SYSTEM)


def test_a_repeated_idempotency_key_returns_the_first_event_and_changes_nothing():
    order = order_in_status("awaiting_confirmation")

    first = order_transition(order, "confirm", source=SYSTEM, idempotency_key="wa:reply:123")
    again = order_transition(order, "confirm", source=SYSTEM, idempotency_key="wa:reply:123")

    order.refresh_from_db()
    assert again.pk == first.pk
    assert order.status == "confirmed"
    assert order.events.filter(transition="confirm").count() == 1
    assert Message.objects.filter(order=order, event="order_confirmed").count() == 1


def test_an_idempotency_key_is_scoped_to_its_order():
    one, two = order_in_status("awaiting_confirmation"), order_in_status("awaiting_confirmation")

    order_transition(one, "confirm", source=SYSTEM, idempotency_key="same-key")
    order_transition(two, "confirm", source=SYSTEM, idempotency_key="same-key")

    assert OrderEvent.objects.filter(idempotency_key="same-key").count() == 2


def test_an_agent_without_the_transition_permission_is_refused():
    order = order_in_status("confirmed")
    agent = UserFactory(groups=["Confirmation agent"])

    with pytest.raises(TransitionPermissionDenied, match="permission to “ship”"):
        order_transition(order, "ship", source=OrderEvent.Source.AGENT, actor=agent)

    order.refresh_from_db()
    assert order.status == "confirmed"


def test_an_agent_with_the_permission_is_recorded_as_the_actor():
    order = order_in_status("awaiting_confirmation")
    agent = UserFactory(groups=["Confirmation agent"])

    event = order_transition(order, "confirm", source=OrderEvent.Source.AGENT, actor=agent, reason="called")

    assert (event.actor, event.source, event.reason) == (agent, "agent", "called")


def test_an_agent_transition_without_an_actor_is_a_programming_error():
    order = order_in_status("awaiting_confirmation")
    with pytest.raises(ValueError, match="acting user"):
        order_transition(order, "confirm", source=OrderEvent.Source.AGENT)


def test_an_unknown_transition_name_is_refused():
    order = order_in_status("placed")
    with pytest.raises(UnknownTransition):
        order_transition(order, "teleport", source=SYSTEM)


def test_an_unknown_source_is_refused():
    order = order_in_status("placed")
    with pytest.raises(ValueError, match="unknown event source"):
        order_transition(order, "request_confirmation", source="martians")


def test_a_stale_expected_status_is_refused_without_acting():
    order = order_in_status("confirmed")
    with pytest.raises(StaleOrderStatus, match="changed to confirmed since you loaded it"):
        order_transition(order, "cancel", source=SYSTEM, expected_status="awaiting_confirmation")
    order.refresh_from_db()
    assert order.status == "confirmed"


def test_the_order_id_works_as_well_as_the_instance():
    order = order_in_status("awaiting_confirmation")
    event = order_transition(order.pk, "confirm", source=SYSTEM)
    assert event.order_id == order.pk and event.to_status == "confirmed"


def test_the_callers_instance_reflects_the_committed_status():
    order = order_in_status("awaiting_confirmation")
    order_transition(order, "confirm", source=SYSTEM)
    assert order.status == "confirmed"


def test_status_cannot_be_assigned_directly():
    order = order_in_status("placed")
    with pytest.raises(AttributeError, match="Direct status modification is not allowed"):
        order.status = "delivered"


def test_a_failed_delivery_can_be_rescheduled_and_then_delivered():
    order = order_in_status("delivery_failed")
    order_transition(order, "reschedule_delivery", source=OrderEvent.Source.CARRIER)
    order_transition(order, "deliver", source=OrderEvent.Source.CARRIER)
    assert [e.to_status for e in status_events(order)][-3:] == [
        "delivery_failed",
        "out_for_delivery",
        "delivered",
    ]


def test_a_prepaid_order_skips_confirmation():
    assert shortest_path("shipped", PaymentMethod.PREPAID) == ["accept", "ship"]
    assert shortest_path("shipped", PaymentMethod.COD) == ["request_confirmation", "confirm", "ship"]
