"""Rule conditions: each field and operator, and AND/OR trees, read against one order."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from automations.services.conditions import conditions_hold
from messaging.models import Consent
from messaging.services.consent import consent_record
from messaging.services.outbox import notification_create
from orders.transitions import OrderStatus, PaymentMethod
from tests.factories import CustomerFactory, OrderFactory, StoreFactory, order_in_status

pytestmark = pytest.mark.django_db


def leaf(field: str, op: str, value) -> dict:
    return {"field": field, "op": op, "value": value}


def test_an_empty_tree_always_holds():
    assert conditions_hold({}, OrderFactory())


# --- payment method ---------------------------------------------------------------------------
def test_payment_method_eq_holds_for_that_method_only():
    condition = leaf("payment_method", "eq", "cod")

    assert conditions_hold(condition, OrderFactory(payment_method=PaymentMethod.COD))
    assert not conditions_hold(condition, OrderFactory(payment_method=PaymentMethod.PREPAID))


def test_payment_method_ne_holds_for_the_other_methods():
    condition = leaf("payment_method", "ne", "cod")

    assert conditions_hold(condition, OrderFactory(payment_method=PaymentMethod.PREPAID))
    assert not conditions_hold(condition, OrderFactory(payment_method=PaymentMethod.COD))


# --- total amount -----------------------------------------------------------------------------
@pytest.mark.parametrize(("total", "holds"), [("999.99", False), ("1000.00", True), ("1500.00", True)])
def test_total_amount_gte_includes_the_bound(total, holds):
    assert (
        conditions_hold(leaf("total_amount", "gte", "1000"), OrderFactory(total_amount=Decimal(total)))
        is holds
    )


@pytest.mark.parametrize(("total", "holds"), [("999.99", True), ("1000.00", True), ("1000.01", False)])
def test_total_amount_lte_includes_the_bound(total, holds):
    assert (
        conditions_hold(leaf("total_amount", "lte", 1000), OrderFactory(total_amount=Decimal(total))) is holds
    )


@pytest.mark.parametrize(
    ("total", "holds"),
    [("99.99", False), ("100.00", True), ("250.00", True), ("500.00", True), ("500.01", False)],
)
def test_total_amount_between_includes_both_bounds(total, holds):
    condition = leaf("total_amount", "between", ["100", "500.00"])

    assert conditions_hold(condition, OrderFactory(total_amount=Decimal(total))) is holds


# --- city -------------------------------------------------------------------------------------
def test_city_eq_ignores_case_and_surrounding_spaces():
    order = OrderFactory(shipping_city="Casablanca ")

    assert conditions_hold(leaf("city", "eq", "  CASABLANCA"), order)
    assert not conditions_hold(leaf("city", "eq", "Rabat"), order)


def test_city_ne_holds_for_other_cities():
    order = OrderFactory(shipping_city="Fès")

    assert conditions_hold(leaf("city", "ne", "Rabat"), order)
    assert not conditions_hold(leaf("city", "ne", "fès"), order)


def test_city_in_matches_any_listed_city_ignoring_case():
    condition = leaf("city", "in", ["Rabat", "casablanca"])

    assert conditions_hold(condition, OrderFactory(shipping_city="CASABLANCA"))
    assert not conditions_hold(condition, OrderFactory(shipping_city="Tanger"))


# --- tags -------------------------------------------------------------------------------------
def test_tag_has_holds_when_the_order_carries_the_tag():
    assert conditions_hold(leaf("tag", "has", "vip"), OrderFactory(tags=["new", "vip"]))
    assert not conditions_hold(leaf("tag", "has", "vip"), OrderFactory(tags=["new"]))


def test_tag_lacks_holds_when_the_order_does_not_carry_the_tag():
    assert conditions_hold(leaf("tag", "lacks", "fraud"), OrderFactory(tags=[]))
    assert not conditions_hold(leaf("tag", "lacks", "fraud"), OrderFactory(tags=["fraud"]))


# --- the customer's history -------------------------------------------------------------------
def test_first_order_is_true_for_the_customer_s_earliest_order_only():
    customer = CustomerFactory()
    first = OrderFactory(store=customer.store, customer=customer)
    second = OrderFactory(
        store=customer.store, customer=customer, placed_at=first.placed_at + timedelta(days=3)
    )

    assert conditions_hold(leaf("first_order", "eq", True), first)
    assert conditions_hold(leaf("first_order", "eq", False), second)
    assert not conditions_hold(leaf("first_order", "eq", True), second)


def test_first_order_ignores_other_customers_orders():
    earlier = OrderFactory()
    mine = OrderFactory(store=earlier.store, placed_at=earlier.placed_at + timedelta(days=1))

    assert conditions_hold(leaf("first_order", "eq", True), mine)


def test_past_returns_counts_the_customer_s_returned_orders():
    customer = CustomerFactory()
    order_in_status(OrderStatus.RETURNED, store=customer.store, customer=customer)
    order_in_status(OrderStatus.RTO_INITIATED, store=customer.store, customer=customer)
    order_in_status(OrderStatus.DELIVERED, store=customer.store, customer=customer)
    new_order = OrderFactory(store=customer.store, customer=customer)

    assert conditions_hold(leaf("past_returns", "gte", 2), new_order)
    assert not conditions_hold(leaf("past_returns", "gte", 3), new_order)
    assert conditions_hold(leaf("past_returns", "lte", "2"), new_order)
    assert not conditions_hold(leaf("past_returns", "lte", 1), new_order)


def test_past_returns_does_not_count_the_order_itself():
    returned = order_in_status(OrderStatus.RETURNED)

    assert conditions_hold(leaf("past_returns", "lte", 0), returned)


# --- consent ----------------------------------------------------------------------------------
def test_consent_has_holds_only_for_a_channel_the_customer_opted_in_on():
    order = OrderFactory()
    consent_record(order.customer, "whatsapp", Consent.Status.OPTED_IN, source=Consent.Source.CHECKOUT)
    consent_record(order.customer, "sms", Consent.Status.OPTED_OUT, source=Consent.Source.CUSTOMER_REPLY)

    assert conditions_hold(leaf("consent", "has", "whatsapp"), order)
    assert not conditions_hold(leaf("consent", "has", "sms"), order)
    assert not conditions_hold(leaf("consent", "has", "email"), order)


def test_consent_lacks_holds_for_an_opt_out_or_no_record():
    order = OrderFactory()
    consent_record(order.customer, "sms", Consent.Status.OPTED_OUT, source=Consent.Source.CUSTOMER_REPLY)
    consent_record(order.customer, "whatsapp", Consent.Status.OPTED_IN, source=Consent.Source.CHECKOUT)

    assert conditions_hold(leaf("consent", "lacks", "sms"), order)
    assert conditions_hold(leaf("consent", "lacks", "email"), order)
    assert not conditions_hold(leaf("consent", "lacks", "whatsapp"), order)


# --- the order's status, and what the customer was told ---------------------------------------
def test_status_eq_ne_and_in_read_the_orders_status_now():
    order = order_in_status(OrderStatus.SHIPPED)

    assert conditions_hold(leaf("status", "eq", "shipped"), order)
    assert not conditions_hold(leaf("status", "ne", "shipped"), order)
    assert conditions_hold(leaf("status", "in", ["confirmed", "shipped"]), order)
    assert not conditions_hold(leaf("status", "in", ["confirmed", "processing"]), order)


def test_told_has_holds_once_the_customer_was_sent_that_events_message_about_the_order():
    asked = order_in_status(OrderStatus.AWAITING_CONFIRMATION)
    other = order_in_status(OrderStatus.AWAITING_CONFIRMATION, customer=asked.customer, store=asked.store)
    notification_create(asked, event="reply_late_confirmed", key="told-test")

    assert conditions_hold(leaf("told", "has", "reply_late_confirmed"), asked)
    assert conditions_hold(leaf("told", "has", "confirmation_requested"), asked)
    assert not conditions_hold(leaf("told", "has", "reply_late_confirmed"), other)
    assert conditions_hold(leaf("told", "lacks", "reply_late_confirmed"), other)


# --- time of day, in the store's time zone ----------------------------------------------------
@pytest.fixture
def kolkata_order():
    # India keeps +05:30 all year: the store's clock is the UTC one plus 5 h 30, whatever the date.
    return OrderFactory(store=StoreFactory(time_zone="Asia/Kolkata", default_phone_region="IN"))


def utc(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, 10, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "holds"),
    [
        (utc(3, 30), True),  # 09:00 in Kolkata: the window opens
        (utc(8, 0), True),  # 13:30
        (utc(12, 29), True),  # 17:59
        (utc(12, 30), False),  # 18:00: the window has closed
        (utc(2, 0), False),  # 07:30
    ],
)
def test_time_of_day_between_is_read_on_the_store_s_clock(kolkata_order, now, holds):
    with time_machine.travel(now, tick=False):
        assert conditions_hold(leaf("time_of_day", "between", ["09:00", "18:00"]), kolkata_order) is holds


@pytest.mark.parametrize(
    ("now", "holds"),
    [
        (utc(15, 30), True),  # 21:00 in Kolkata (15:30 UTC would be outside the window)
        (utc(18, 30), True),  # 00:00 local: past midnight, still inside
        (utc(1, 0), True),  # 06:30 local
        (utc(3, 29), True),  # 08:59 local
        (utc(3, 30), False),  # 09:00 local: over
        (utc(22, 0), True),  # 03:30 local, the next day
        (utc(10, 0), False),  # 15:30 local
        (utc(22, 0) - timedelta(hours=2), True),  # 01:30 local
    ],
)
def test_time_of_day_between_wraps_over_midnight(kolkata_order, now, holds):
    with time_machine.travel(now, tick=False):
        assert conditions_hold(leaf("time_of_day", "between", ["21:00", "09:00"]), kolkata_order) is holds


# --- all / any --------------------------------------------------------------------------------
NESTED = {
    "all": [
        leaf("payment_method", "eq", "cod"),
        {"any": [leaf("city", "in", ["Rabat", "Salé"]), leaf("total_amount", "gte", "500")]},
    ]
}


@pytest.mark.parametrize(
    ("payment_method", "city", "total", "holds"),
    [
        (PaymentMethod.COD, "Rabat", "100", True),  # all: cod, any: the city
        (PaymentMethod.COD, "Casablanca", "600", True),  # any: the amount
        (PaymentMethod.COD, "Casablanca", "100", False),  # no part of the any
        (PaymentMethod.PREPAID, "Rabat", "600", False),  # the all fails on its first part
    ],
)
def test_all_needs_every_part_and_any_needs_one(payment_method, city, total, holds):
    order = OrderFactory(payment_method=payment_method, shipping_city=city, total_amount=Decimal(total))

    assert conditions_hold(NESTED, order) is holds


def test_any_of_a_single_failing_leaf_does_not_hold():
    assert not conditions_hold({"any": [leaf("tag", "has", "vip")]}, OrderFactory(tags=[]))
