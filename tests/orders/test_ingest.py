"""What a store's actions do to orders (``orders.services.ingest.store_actions_apply``).

The actions are what the platform adapters produce (their own tests read real payloads); here
the mapping to the orders services is pinned, the same for every platform.
"""

from decimal import Decimal

import pytest

from carriers.models import Shipment
from messaging.models import Consent, Message
from messaging.services.consent import consent_record
from orders.models import Order, OrderEvent
from orders.services.ingest import store_actions_apply
from tests.factories import StoreFactory
from tests.orders.ingest_helpers import action, claim, customer, incoming_order, later, shipment, upsert

pytestmark = pytest.mark.django_db

STORE = OrderEvent.Source.STORE


@pytest.fixture
def store():
    return StoreFactory(default_phone_region="MA")


def apply(store, *actions, key="delivery:1"):
    return store_actions_apply(store, list(actions), source=STORE, evidence={"delivery_id": 1}, key=key)


def the_order(store) -> Order:
    return Order.objects.get(store=store)


def event_types(order) -> list[str]:
    """The order's timeline, without the store's rules' own entries (automation_*)."""
    return list(order.events.exclude(type__startswith="automation_").values_list("type", flat=True))


# --- creating ----------------------------------------------------------------------------------
def test_a_new_cod_order_is_created_placed_and_asks_the_customer_to_confirm(store):
    outcome = apply(store, upsert(incoming_order()))

    order = the_order(store)
    assert outcome.created and outcome.order == order
    assert (order.status, order.number, order.cod_amount) == (
        "awaiting_confirmation",
        "#1001",
        Decimal("249.00"),
    )
    assert event_types(order) == ["placed", "confirmation_requested"]
    # The store's first-move rule asked, not the store itself.
    assert order.events.get(type="confirmation_requested").source == OrderEvent.Source.AUTOMATION
    assert [(i.title, i.quantity) for i in order.items.all()] == [("Babouches", 1)]
    assert Message.objects.filter(order=order, event="confirmation_requested").count() == 1


def test_a_moroccan_local_phone_becomes_e164_with_the_stores_region(store):
    apply(store, upsert(incoming_order()))

    assert the_order(store).customer.phone == "+212612345678"


def test_a_paid_prepaid_order_is_accepted(store):
    apply(store, upsert(incoming_order(payment_method="prepaid", paid=True, cod_amount=Decimal("0"))))

    assert the_order(store).status == "confirmed"


def test_an_unpaid_prepaid_order_waits_at_placed_until_the_store_says_it_is_paid(store):
    order = incoming_order(payment_method="prepaid", paid=False, cod_amount=Decimal("0"))
    apply(store, upsert(order))
    assert the_order(store).status == "placed"

    apply(store, action("paid"), key="delivery:2")

    assert the_order(store).status == "confirmed"


def test_the_same_order_twice_is_one_order_with_one_placed_event(store):
    apply(store, upsert(incoming_order()), key="delivery:1")
    apply(store, upsert(incoming_order()), key="delivery:2")

    order = the_order(store)
    assert event_types(order) == ["placed", "confirmation_requested"]
    assert Message.objects.filter(order=order).count() == 1


def test_an_update_that_says_a_prepaid_order_is_now_paid_accepts_it(store):
    first = incoming_order(payment_method="prepaid", paid=False, cod_amount=Decimal("0"))
    apply(store, upsert(first))

    apply(store, upsert(later(first, paid=True)), key="delivery:2")

    assert the_order(store).status == "confirmed"


# --- updating ----------------------------------------------------------------------------------
def test_a_newer_update_changes_the_order_and_says_so_on_its_timeline(store):
    first = incoming_order()
    apply(store, upsert(first))

    outcome = apply(store, upsert(later(first, shipping_address="5 Bd Zerktouni", shipping_city="Rabat")))

    order = the_order(store)
    assert (order.shipping_address, order.shipping_city) == ("5 Bd Zerktouni", "Rabat")
    assert outcome.applied == ["updated"]
    updated = order.events.get(type="updated_by_store")
    assert updated.payload["fields"] == ["shipping_address", "shipping_city"]


def test_an_update_older_than_what_livra_has_changes_nothing(store):
    first = incoming_order()
    apply(store, upsert(later(first, minutes=10, shipping_city="Rabat")))

    outcome = apply(store, upsert(later(first, minutes=5, shipping_city="Tanger")))

    assert the_order(store).shipping_city == "Rabat"
    assert outcome.stale and not outcome.applied
    assert "older than what Livra has" in outcome.notes[0]


def test_the_rest_of_an_old_delivery_is_ignored_too(store):
    first = incoming_order()
    apply(store, upsert(later(first, minutes=10)))

    apply(store, upsert(first), action("cancel", reason="customer"))

    assert the_order(store).status == "awaiting_confirmation"


def test_changed_items_replace_the_old_ones(store):
    first = incoming_order()
    apply(store, upsert(first))
    items = (*first.items, first.items[0].__class__(title="Tajine", quantity=2, unit_price=Decimal("0")))

    apply(store, upsert(later(first, items=items)))

    assert sorted(the_order(store).items.values_list("title", flat=True)) == ["Babouches", "Tajine"]


# --- customers ---------------------------------------------------------------------------------
def test_a_returning_customer_is_found_by_phone_however_it_is_typed(store):
    apply(store, upsert(incoming_order("1")))

    apply(store, upsert(incoming_order("2", customer=customer(phone="+212 6 12 34 56 78"))))

    first, second = Order.objects.filter(store=store).order_by("external_id")
    assert first.customer_id == second.customer_id


def test_a_customer_without_a_phone_is_found_by_email(store):
    apply(store, upsert(incoming_order("1", customer=customer(phone="", email="amine@example.com"))))

    apply(store, upsert(incoming_order("2", customer=customer(phone="", email="AMINE@example.com"))))

    assert Order.objects.filter(store=store).values("customer").distinct().count() == 1


def test_an_unreadable_phone_is_kept_as_typed_and_noted(store):
    outcome = apply(store, upsert(incoming_order(customer=customer(phone="12"))))

    person = the_order(store).customer
    assert (person.phone_raw, person.phone) == ("12", "")
    assert any("could not be read" in note for note in outcome.notes)


# --- consent -----------------------------------------------------------------------------------
def test_a_checkout_marketing_opt_in_is_recorded_with_its_evidence(store):
    apply(store, upsert(incoming_order(customer=customer(consents=(claim("whatsapp"),)))))

    consent = Consent.objects.get(customer=the_order(store).customer, channel="whatsapp")
    assert (consent.status, consent.marketing, consent.source) == ("opted_in", True, "store_webhook")
    assert consent.evidence["delivery_id"] == 1
    assert consent.evidence["buyer_accepts_marketing"] == "True"


def test_a_checkout_box_does_not_undo_a_customers_stop(store):
    apply(store, upsert(incoming_order("1")))
    person = the_order(store).customer
    consent_record(person, "sms", Consent.Status.OPTED_OUT, source=Consent.Source.CUSTOMER_REPLY)

    apply(store, upsert(incoming_order("2", customer=customer(consents=(claim("sms"),)))))

    assert Consent.objects.get(customer=person, channel="sms").status == "opted_out"


# --- status from the store ---------------------------------------------------------------------
def test_a_store_cancel_cancels_an_order_awaiting_confirmation(store):
    apply(store, upsert(incoming_order()))

    apply(store, action("cancel", reason="customer changed their mind"), key="delivery:2")

    order = the_order(store)
    assert order.status == "cancelled"
    assert order.events.get(type="cancelled").reason == "customer changed their mind"


def test_a_store_cancel_after_shipping_is_not_applied_but_flagged_on_the_timeline(store):
    apply(store, upsert(incoming_order(payment_method="prepaid", paid=True, cod_amount=Decimal("0"))))
    apply(store, shipment(), key="delivery:2")

    outcome = apply(store, action("cancel"), key="delivery:3")

    order = the_order(store)
    assert outcome.flagged and order.status == "shipped"
    assert order.events.get(type="store_update_not_applied").reason == "cancel (order was shipped)"


def test_a_refund_of_an_order_that_never_took_money_is_not_applied_but_flagged(store):
    apply(store, upsert(incoming_order()))
    apply(store, action("cancel"), key="delivery:2")

    outcome = apply(store, action("refund"), key="delivery:3")

    assert outcome.flagged and the_order(store).status == "cancelled"


def test_a_partial_refund_is_a_timeline_fact_and_leaves_the_order_as_it_is(store):
    apply(store, upsert(incoming_order(payment_method="prepaid", paid=True, cod_amount=Decimal("0"))))
    apply(store, shipment("delivered"), key="delivery:2")

    apply(store, action("refund", detail={"amount": "50.00", "currency": "MAD"}), key="delivery:3")

    order = the_order(store)
    assert order.status == "delivered"
    assert order.events.get(type="partial_refund_recorded").payload["amount"] == "50.00"


def test_a_full_refund_of_a_delivered_order_refunds_it(store):
    apply(store, upsert(incoming_order(payment_method="prepaid", paid=True, cod_amount=Decimal("0"))))
    apply(store, shipment("delivered"), key="delivery:2")

    apply(store, action("refund", detail={"amount": "249.00", "currency": "MAD"}), key="delivery:3")

    assert the_order(store).status == "refunded"


def test_a_fulfillment_records_the_shipment_and_ships_a_confirmed_order(store):
    apply(store, upsert(incoming_order(payment_method="prepaid", paid=True, cod_amount=Decimal("0"))))

    apply(store, shipment(), key="delivery:2")

    order = the_order(store)
    assert order.status == "shipped"
    shipped = order.events.get(type="shipped")
    assert shipped.payload["tracking_url"] == "https://t.example/LV1"
    assert Shipment.objects.get(order=order).tracking_number == "LV123456789MA"


def test_a_delivered_fulfillment_moves_a_confirmed_order_through_shipped_to_delivered(store):
    apply(store, upsert(incoming_order(payment_method="prepaid", paid=True, cod_amount=Decimal("0"))))

    apply(store, shipment("delivered"), key="delivery:2")

    assert event_types(the_order(store))[-2:] == ["shipped", "delivered"]


def test_a_late_in_transit_after_delivered_is_old_news_not_a_flag(store):
    apply(store, upsert(incoming_order(payment_method="prepaid", paid=True, cod_amount=Decimal("0"))))
    apply(store, shipment("delivered"), key="delivery:2")

    outcome = apply(store, shipment("in_transit"), key="delivery:3")

    assert not outcome.flagged
    assert the_order(store).status == "delivered"


def test_an_unknown_shipment_status_is_kept_on_the_shipment_and_flagged_never_guessed(store):
    apply(store, upsert(incoming_order(payment_method="prepaid", paid=True, cod_amount=Decimal("0"))))

    outcome = apply(store, shipment("held_at_customs"), key="delivery:2")

    order = the_order(store)
    assert outcome.flagged and order.status == "confirmed"
    assert Shipment.objects.get(order=order).reported_status == "held_at_customs"


def test_a_shipment_for_an_order_not_confirmed_in_livra_is_kept_and_flagged(store):
    apply(store, upsert(incoming_order()))

    outcome = apply(store, shipment(), key="delivery:2")

    assert outcome.flagged
    assert the_order(store).status == "awaiting_confirmation"
    assert Shipment.objects.filter(order=the_order(store)).exists()


def test_cash_collected_on_a_cod_order_is_a_timeline_fact_not_a_status_guess(store):
    apply(store, upsert(incoming_order()))

    apply(store, action("paid"), key="delivery:2")

    order = the_order(store)
    assert order.status == "awaiting_confirmation"
    assert "payment_recorded" in event_types(order)


def test_an_action_for_an_order_livra_does_not_have_is_flagged(store):
    outcome = apply(store, action("cancel", external_id="404"))

    assert outcome.flagged and not Order.objects.exists()


def test_a_flag_action_surfaces_what_the_store_said_on_the_order(store):
    apply(store, upsert(incoming_order()))

    outcome = apply(store, action("flag", reason="WooCommerce status 'awaiting-shipment'"), key="delivery:2")

    assert outcome.flagged
    event = the_order(store).events.get(type="store_update_not_applied")
    assert "awaiting-shipment" in event.reason


def test_reapplying_a_delivery_moves_nothing_twice(store):
    apply(store, upsert(incoming_order()))
    apply(store, action("cancel"), key="delivery:2")

    apply(store, action("cancel"), key="delivery:2")

    assert event_types(the_order(store)).count("cancelled") == 1
