"""The default rules that answer customers' replies: late confirms and cancels, unclear messages.

Replies go through the real inbound handling (``reply`` fixture); the rules run in the reply's own
transaction, so what they write is there as soon as the reply is handled.
"""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from automations.models import QueueEntry, Rule
from messaging.models import Notification
from orders.transitions import OrderStatus
from tests.factories import order_in_status

pytestmark = pytest.mark.django_db

S = OrderStatus
CONFIRMED_NOT_DELIVERED = [S.CONFIRMED, S.PROCESSING, S.SHIPPED, S.IN_TRANSIT, S.OUT_FOR_DELIVERY]
# Every status a reply can find an order in once it no longer awaits an answer.
NOT_AWAITING = [status for status in S.values if status != S.AWAITING_CONFIRMATION]


def answers(order) -> list[str]:
    """What the customer was answered about ``order`` (the reply_* notifications), oldest first."""
    notifications = Notification.objects.filter(order=order, event__startswith="reply_").order_by("pk")
    return list(notifications.values_list("event", flat=True))


def in_status(store, status: str):
    # Refunds need money taken: a prepaid order gets there from any of its final statuses.
    payment_method = "prepaid" if status == S.REFUNDED else "cod"
    return order_in_status(status, store=store, payment_method=payment_method)


# --- a cancel after confirming ----------------------------------------------------------------
@pytest.mark.parametrize("status", CONFIRMED_NOT_DELIVERED)
def test_a_cancel_after_confirming_is_told_the_order_is_confirmed_and_to_send_2_for_a_call(
    store, reply, status
):
    order = in_status(store, status)

    inbound = reply(order, "annuler")

    order.refresh_from_db()
    assert order.status == status
    assert answers(order) == ["reply_late_confirmed"]
    assert not QueueEntry.objects.filter(order=order).exists()
    assert inbound.handled


def test_a_2_after_that_answer_puts_the_order_in_the_queue_with_the_reason(store, reply, default_rule):
    order = in_status(store, S.CONFIRMED)
    reply(order, button_payload=f"cancel:{order.pk}")

    inbound = reply(order, "2")

    entry = QueueEntry.objects.get(order=order, state=QueueEntry.State.OPEN)
    assert (entry.priority, entry.reason, entry.rule) == (
        80,
        "customer asked to cancel after confirming",
        default_rule("late-cancel-again-to-queue"),
    )
    assert answers(order) == ["reply_late_confirmed", "reply_received"]
    assert inbound.handled
    assert "queued: customer asked to cancel after confirming" in inbound.outcome


def test_the_answers_call_me_button_puts_the_order_in_the_queue(store, reply):
    order = in_status(store, S.SHIPPED)
    reply(order, "non")

    reply(order, "Call me to cancel", button_payload=f"cancel:{order.pk}")

    assert QueueEntry.objects.filter(order=order, state=QueueEntry.State.OPEN).exists()


def test_asking_again_once_queued_adds_no_entry_and_no_second_acknowledgement(store, reply):
    order = in_status(store, S.CONFIRMED)
    reply(order, "annuler")
    reply(order, "2")

    reply(order, "2")

    assert QueueEntry.objects.filter(order=order).count() == 1
    assert answers(order) == ["reply_late_confirmed", "reply_received"]


# --- other late answers -----------------------------------------------------------------------
@pytest.mark.parametrize("status", CONFIRMED_NOT_DELIVERED)
def test_a_confirm_of_a_confirmed_order_is_told_there_is_nothing_more_to_do(store, reply, status):
    order = in_status(store, status)

    reply(order, "oui")

    assert answers(order) == ["reply_already_confirmed"]


@pytest.mark.parametrize("text", ["1", "2"])
def test_a_confirm_or_cancel_of_a_cancelled_order_is_told_it_was_cancelled(store, reply, text):
    order = in_status(store, S.CANCELLED)

    reply(order, text)

    assert answers(order) == ["reply_late_cancelled"]


@pytest.mark.parametrize("status", NOT_AWAITING)
@pytest.mark.parametrize("text", ["1", "2"])
def test_every_late_confirm_or_cancel_gets_one_answer_whatever_the_orders_status(store, reply, status, text):
    order = in_status(store, status)

    reply(order, text)

    assert len(answers(order)) == 1


def test_a_store_that_switches_a_late_answer_off_gets_the_acknowledgement_instead(store, reply, default_rule):
    Rule.objects.filter(pk=default_rule("late-cancel-confirmed").pk).update(enabled=False)
    order = in_status(store, S.CONFIRMED)

    inbound = reply(order, "annuler")

    assert answers(order) == ["reply_received"]
    assert not inbound.handled  # an agent reads it


def test_a_late_answer_goes_out_at_once_even_in_the_stores_quiet_hours(store, reply):
    order = in_status(store, S.CONFIRMED)
    night = timezone.now().replace(hour=23, minute=30)  # 23:30 or 00:30 in Casablanca

    with time_machine.travel(night, tick=False):
        reply(order, "annuler")

    message = Notification.objects.get(order=order, event="reply_late_confirmed").messages.get()
    assert message.next_attempt_at == night


# --- unclear replies --------------------------------------------------------------------------
def test_an_unclear_answer_is_acknowledged_once_in_30_minutes(awaiting, reply):
    order = awaiting()

    reply(order, "c'est combien la livraison ?")
    reply(order, "?")
    with time_machine.travel(timezone.now() + timedelta(minutes=29), tick=False):
        reply(order, "allô")

    assert answers(order) == ["reply_received"]


def test_the_acknowledgements_limit_is_per_order(store, reply):
    first = in_status(store, S.DELIVERED)
    second = in_status(store, S.DELIVERED)

    reply(first, "merci mais le colis est abîmé")
    reply(second, "et l'autre commande ?")

    assert (answers(first), answers(second)) == (["reply_received"], ["reply_received"])
