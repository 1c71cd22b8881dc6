"""The default rules that make a new order's first move and tell the customer of each status: they
run in the status change's own transaction, so their outbox rows commit or roll back with it."""

from datetime import timedelta

import pytest
from django.db import transaction

from automations.models import Rule, Timer
from automations.receivers import MAX_RULE_CHAIN
from messaging.models import Notification
from messaging.services.rendering import order_context, template_for
from orders.models import Order, OrderEvent
from orders.services import order_create, order_transition
from orders.transitions import OrderStatus, PaymentMethod
from tests.factories import CustomerFactory, OrderFactory, StoreFactory, order_in_status

pytestmark = pytest.mark.django_db

S = OrderStatus
COD, PREPAID = PaymentMethod.COD, PaymentMethod.PREPAID
THREE_DAYS = timedelta(days=3, minutes=1)


def placed(store, payment_method=COD) -> Order:
    """A new order of ``store`` written through ``order_create``, as store ingestion and the admin do."""
    order = OrderFactory.build(
        store=store, customer=CustomerFactory(store=store), payment_method=payment_method
    )
    order_create(order, source=OrderEvent.Source.STORE)
    return order


def told(order, event: str) -> int:
    return Notification.objects.filter(order=order, event=event).count()


# --- a new order's first move -----------------------------------------------------------------
def test_a_new_cod_order_is_asked_to_confirm_at_once(store):
    order = placed(store)

    order.refresh_from_db()
    assert order.status == S.AWAITING_CONFIRMATION
    assert told(order, "confirmation_requested") == 1


def test_the_move_to_awaiting_confirmation_names_the_rule_that_made_it(store, default_rule):
    order = placed(store)

    event = OrderEvent.objects.get(order=order, transition="request_confirmation")
    rule = default_rule("cod-ask-to-confirm")
    assert event.source == OrderEvent.Source.AUTOMATION
    assert (event.payload["rule_id"], event.payload["rule_version"]) == (rule.pk, rule.version)


def test_a_new_prepaid_order_is_told_it_was_received_and_waits_for_its_payment(store):
    order = placed(store, PREPAID)

    order.refresh_from_db()
    assert order.status == S.PLACED
    assert told(order, "order_received") == 1
    assert told(order, "confirmation_requested") == 0


def test_a_store_that_disables_the_first_move_keeps_new_cod_orders_at_placed(store, default_rule):
    Rule.objects.filter(pk=default_rule("cod-ask-to-confirm").pk).update(enabled=False)

    order = placed(store)

    order.refresh_from_db()
    assert order.status == S.PLACED
    assert told(order, "confirmation_requested") == 0


# --- each status tells the customer -----------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "payment_method", "event", "rule_key"),
    [
        (S.AWAITING_CONFIRMATION, COD, "confirmation_requested", "confirmation-request"),
        (S.CONFIRMED, COD, "order_confirmed", "cod-confirmed"),
        (S.CANCELLED, COD, "order_cancelled", "cancelled"),
        (S.SHIPPED, COD, "order_shipped", "shipped"),
        (S.OUT_FOR_DELIVERY, COD, "out_for_delivery", "out-for-delivery"),
        (S.DELIVERY_FAILED, COD, "delivery_failed", "delivery-failed"),
        (S.DELIVERED, COD, "order_delivered", "delivered"),
        (S.REFUNDED, PREPAID, "order_refunded", "refunded"),
    ],
)
def test_entering_a_status_sends_its_default_message_once(status, payment_method, event, rule_key):
    order = order_in_status(status, payment_method=payment_method)

    notification = Notification.objects.get(order=order, event=event)
    rule = Rule.objects.get(store=order.store, key=rule_key)
    assert notification.idempotency_key.startswith(f"rule:{rule.pk}:v1:order:{order.pk}:entered:")
    audit = OrderEvent.objects.get(order=order, type="automation_notified", payload__event=event)
    assert audit.payload["rule_id"] == rule.pk


def test_two_orders_entering_the_same_status_each_hear_about_it(store):
    first, second = (order_in_status(S.SHIPPED, store=store) for _ in range(2))

    assert (told(first, "order_shipped"), told(second, "order_shipped")) == (1, 1)


def test_a_prepaid_order_accepted_after_its_payment_hears_nothing_more():
    order = order_in_status(S.CONFIRMED, payment_method=PREPAID)

    assert told(order, "order_confirmed") == 0


def test_a_disabled_status_rule_tells_the_customer_nothing(store, default_rule):
    Rule.objects.filter(pk=default_rule("shipped").pk).update(enabled=False)

    order = order_in_status(S.SHIPPED, store=store)

    assert told(order, "order_shipped") == 0


def test_a_status_change_rolled_back_leaves_no_message(store):
    order = order_in_status(S.CONFIRMED, store=store)

    with pytest.raises(RuntimeError), transaction.atomic():
        order_transition(order, "ship", source=OrderEvent.Source.STORE)
        raise RuntimeError("the caller failed after the move")

    assert told(order, "order_shipped") == 0
    audits = OrderEvent.objects.filter(order=order, type="automation_notified")
    assert not audits.filter(payload__event="order_shipped").exists()


# --- a failed delivery: the payment link ------------------------------------------------------
def test_a_failed_cod_delivery_offers_the_stores_payment_link():
    store = StoreFactory(payment_link_url="https://pay.example.ma/o/{order_number}")

    order = order_in_status(S.DELIVERY_FAILED, store=store)

    assert told(order, "payment_link_offered") == 1
    assert order_context(order, "fr")["payment_link"] == f"https://pay.example.ma/o/{order.number[1:]}"


def test_no_payment_link_is_offered_by_a_store_without_one(store):
    order = order_in_status(S.DELIVERY_FAILED, store=store)

    assert told(order, "delivery_failed") == 1
    assert told(order, "payment_link_offered") == 0


# --- the review request -----------------------------------------------------------------------
def test_a_review_is_asked_for_three_days_after_delivery(store, sweep_after):
    order = order_in_status(S.DELIVERED, store=store)

    run = sweep_after(THREE_DAYS)

    assert run.fired == 1
    assert told(order, "review_request") == 1


def test_no_review_is_asked_for_two_days_after_delivery(store, sweep_after):
    order = order_in_status(S.DELIVERED, store=store)

    sweep_after(timedelta(days=2))

    assert told(order, "review_request") == 0
    assert Timer.objects.get(order=order, rule__key="review-request").state == Timer.State.PENDING


def test_no_review_is_asked_for_an_order_refunded_since(store, sweep_after):
    order = order_in_status(S.DELIVERED, store=store)
    order_transition(order, "refund", source=OrderEvent.Source.STORE)

    sweep_after(THREE_DAYS)

    assert told(order, "review_request") == 0


# --- rules that move the order on -------------------------------------------------------------
def test_rules_that_move_an_order_round_in_a_circle_stop_after_a_few_moves(store):
    # Valid one by one, a loop together: out for delivery → failed → rescheduled → out for delivery …
    for position, (status, name) in enumerate(
        [(S.OUT_FOR_DELIVERY, "fail_delivery"), (S.DELIVERY_FAILED, "reschedule_delivery")], start=100
    ):
        Rule.objects.create(
            store=store,
            key=f"loop-{name}",
            name=f"Loop: {name}",
            position=position,
            trigger="entered_status",
            status=status,
            actions=[{"type": "transition", "name": name}],
        )
    order = order_in_status(S.SHIPPED, store=store)

    order_transition(order, "mark_out_for_delivery", source=OrderEvent.Source.CARRIER)

    moves = OrderEvent.objects.filter(order=order, source=OrderEvent.Source.AUTOMATION).exclude(transition="")
    assert moves.count() == MAX_RULE_CHAIN
    assert OrderEvent.objects.filter(order=order, type="automation_stopped").count() == 1


def test_the_first_move_asks_on_whatsapp_with_confirm_and_cancel_then_sms(store):
    order = placed(store)

    notification = Notification.objects.get(order=order, event="confirmation_requested")
    assert notification.channels[:2] == ["whatsapp", "sms"]  # SMS if WhatsApp fails
    message = notification.messages.get()
    assert message.channel == "whatsapp"
    # The template the send renders (at send time) carries the quick replies.
    template = template_for(store, "confirmation_requested", "whatsapp", order.customer.language)
    assert [button["id"] for button in template.buttons] == ["confirm", "cancel"]
