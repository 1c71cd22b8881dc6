"""The orders API: create or update, list and filter, read with timeline and messages, transitions."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from orders.models import Order, OrderEvent
from tests.api.conftest import client_with_token, member_of, message_for
from tests.factories import OrderFactory, UserFactory, order_in_status

pytestmark = pytest.mark.django_db

ORDERS = reverse("api:orders")
PLACED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def order_url(order) -> str:
    return reverse("api:order", args=[order.pk])


def transitions_url(order) -> str:
    return reverse("api:order-transitions", args=[order.pk])


def order_body(**changes) -> dict:
    """A cash-on-delivery order as a custom store would post it."""
    body = {
        "store": "atlas-souk",
        "external_id": "A-1001",
        "number": "#1001",
        "payment_method": "cod",
        "currency": "MAD",
        "total_amount": "249.00",
        "cod_amount": "249.00",
        "placed_at": PLACED_AT.isoformat(),
        "updated_at": PLACED_AT.isoformat(),
        "customer": {
            "name": "Fatima Zahra",
            "phone": "0612345678",
            "email": "fatima@example.com",
            "language": "fr",
            "consents": [{"channel": "whatsapp", "subscribed": True}],
        },
        "items": [{"title": "Babouches", "quantity": 1, "unit_price": "249.00", "sku": "BAB-1"}],
        "shipping_address": "12 Rue Ibn Battouta",
        "shipping_city": "Casablanca",
        "notes": "",
        "tags": ["api"],
    }
    return {**body, **changes}


def listed_ids(response) -> list[int]:
    return [order["id"] for order in response.json()["results"]]


# --- authentication and scoping ------------------------------------------------------------------
def test_a_call_without_a_token_is_401():
    response = APIClient().get(ORDERS)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_call_with_an_unknown_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    assert client.get(ORDERS).status_code == 401


def test_another_stores_order_is_not_found(api_client, other_store):
    theirs = OrderFactory(store=other_store)

    assert api_client.get(order_url(theirs)).status_code == 404


def test_another_stores_order_is_not_listed(api_client, store, other_store):
    ours, theirs = OrderFactory(store=store), OrderFactory(store=other_store)

    ids = listed_ids(api_client.get(ORDERS))

    assert ours.pk in ids and theirs.pk not in ids


def test_a_superuser_sees_every_stores_orders(store, other_store):
    ours, theirs = OrderFactory(store=store), OrderFactory(store=other_store)
    admin = UserFactory(is_superuser=True)

    ids = listed_ids(client_with_token(admin).get(ORDERS))

    assert {ours.pk, theirs.pk} <= set(ids)


# --- create or update ----------------------------------------------------------------------------
def test_a_new_order_is_created_with_201_and_its_placed_event(api_client, store, user):
    response = api_client.post(ORDERS, order_body())

    assert response.status_code == 201
    order = Order.objects.get(store=store)
    assert response.json()["id"] == order.pk
    placed = order.events.get(type="placed")
    assert (placed.source, placed.actor) == (OrderEvent.Source.STORE, user)


def test_a_new_cod_order_asks_the_customer_to_confirm(api_client, store):
    response = api_client.post(ORDERS, order_body())

    assert response.json()["status"] == "awaiting_confirmation"
    timeline = [e["type"] for e in response.json()["timeline"]]
    assert timeline == ["placed", "confirmation_requested", "automation_notified"]


def test_the_created_order_has_the_customer_items_and_a_normalised_phone(api_client, store):
    body = api_client.post(ORDERS, order_body()).json()

    assert body["customer"]["phone"] == "+212612345678"
    assert body["items"] == [{"sku": "BAB-1", "title": "Babouches", "quantity": 1, "unit_price": "249.00"}]
    assert (body["store"], body["external_id"], body["cod_amount"]) == ("atlas-souk", "A-1001", "249.00")


def test_the_checkout_consent_claim_is_recorded_with_the_api_as_evidence(api_client, store, user):
    api_client.post(ORDERS, order_body())

    consent = Order.objects.get(store=store).customer.consents.get(channel="whatsapp")
    assert (consent.status, consent.marketing) == ("opted_in", True)
    assert consent.evidence == {"api_user_id": user.pk, "api": "true"}


def test_the_same_order_posted_twice_is_one_order_and_200_the_second_time(api_client, store):
    first = api_client.post(ORDERS, order_body())
    second = api_client.post(ORDERS, order_body())

    assert (first.status_code, second.status_code) == (201, 200)
    assert Order.objects.filter(store=store).count() == 1
    assert Order.objects.get(store=store).events.filter(type="placed").count() == 1


def test_a_newer_update_changes_the_order(api_client, store):
    api_client.post(ORDERS, order_body())
    later = (PLACED_AT + timedelta(minutes=5)).isoformat()

    response = api_client.post(ORDERS, order_body(updated_at=later, shipping_city="Rabat"))

    assert response.status_code == 200
    assert Order.objects.get(store=store).shipping_city == "Rabat"


def test_an_update_older_than_the_last_one_applied_changes_nothing(api_client, store):
    api_client.post(ORDERS, order_body())
    earlier = (PLACED_AT - timedelta(minutes=5)).isoformat()

    response = api_client.post(ORDERS, order_body(updated_at=earlier, shipping_city="Rabat"))

    assert response.status_code == 200
    assert response.json()["shipping_city"] == "Casablanca"
    assert not Order.objects.get(store=store).events.filter(type="updated_by_store").exists()


def test_a_paid_prepaid_order_is_accepted(api_client, store):
    body = order_body(payment_method="prepaid", paid=True, cod_amount="0")

    response = api_client.post(ORDERS, body)

    assert (response.status_code, response.json()["status"]) == (201, "confirmed")


def test_creating_an_order_needs_the_add_order_permission(store):
    agent = member_of(store, groups=["Confirmation agent"])

    response = client_with_token(agent).post(ORDERS, order_body())

    assert response.status_code == 403
    assert not Order.objects.exists()


def test_a_user_who_may_add_orders_gets_the_new_orders_first_move_without_its_permission(store):
    # The first move (asking a COD customer to confirm) is the workflow's, not the caller's.
    clerk = member_of(store, groups=())
    clerk.user_permissions.add(Permission.objects.get(codename="add_order"))

    response = client_with_token(clerk).post(ORDERS, order_body())

    assert response.status_code == 201
    assert Order.objects.get().status == "awaiting_confirmation"


# --- validation ----------------------------------------------------------------------------------
def test_a_cod_amount_above_the_total_is_a_400_on_cod_amount(api_client):
    response = api_client.post(ORDERS, order_body(cod_amount="300.00"))

    assert response.status_code == 400
    assert "more than the total" in response.json()["cod_amount"][0]


def test_an_unknown_payment_method_is_a_400_on_payment_method(api_client):
    response = api_client.post(ORDERS, order_body(payment_method="bitcoin"))

    assert response.status_code == 400
    assert response.json()["payment_method"] == ['"bitcoin" is not a valid choice.']


def test_a_quantity_below_one_is_a_400_on_that_item(api_client):
    items = [{"title": "Babouches", "quantity": 0, "unit_price": "249.00"}]

    response = api_client.post(ORDERS, order_body(items=items))

    assert response.status_code == 400
    assert response.json()["items"] == {
        "0": {"quantity": ["Ensure this value is greater than or equal to 1."]}
    }


def test_a_negative_amount_is_a_400_on_that_amount(api_client):
    response = api_client.post(ORDERS, order_body(total_amount="-1.00"))

    assert response.status_code == 400
    assert response.json()["total_amount"] == ["Ensure this value is greater than or equal to 0."]


def test_a_store_the_user_is_not_a_member_of_is_a_400_on_store(api_client, other_store):
    response = api_client.post(ORDERS, order_body(store=other_store.slug))

    assert response.status_code == 400
    assert response.json() == {"store": ["You have no store “other-shop”."]}
    assert not Order.objects.exists()


def test_a_store_slug_with_a_nul_character_is_a_400_not_a_server_error(api_client):
    # PostgreSQL refuses NUL in a query parameter; the slug must not get that far.
    response = api_client.post(ORDERS, order_body(store="atlas\x00souk"))

    assert response.status_code == 400
    assert list(response.json()) == ["store"]


def test_a_customer_without_phone_or_email_is_a_400(api_client):
    customer = {"name": "Fatima Zahra", "phone": "", "email": ""}

    response = api_client.post(ORDERS, order_body(customer=customer))

    assert response.status_code == 400
    assert response.json() == {"customer": {"phone": ["Give the customer's phone or e-mail (or both)."]}}


def test_a_prepaid_order_with_an_amount_to_collect_is_a_400(api_client):
    response = api_client.post(ORDERS, order_body(payment_method="prepaid", cod_amount="10.00"))

    assert response.status_code == 400
    assert list(response.json()) == ["cod_amount"]


def test_missing_fields_are_each_named(api_client):
    response = api_client.post(ORDERS, {"store": "atlas-souk"})

    assert response.status_code == 400
    required = {"external_id", "number", "payment_method", "total_amount", "placed_at", "customer"}
    assert set(response.json()) == required


# --- list: filters and pagination ----------------------------------------------------------------
def test_orders_are_listed_newest_first(api_client, store):
    older = OrderFactory(store=store, placed_at=PLACED_AT)
    newer = OrderFactory(store=store, placed_at=PLACED_AT + timedelta(hours=1))

    assert listed_ids(api_client.get(ORDERS)) == [newer.pk, older.pk]


def test_orders_are_filtered_by_one_or_more_statuses(api_client, store):
    placed = OrderFactory(store=store)
    confirmed = order_in_status("confirmed", store=store)
    shipped = order_in_status("shipped", store=store)

    response = api_client.get(ORDERS, {"status": ["placed", "shipped"]})

    assert sorted(listed_ids(response)) == sorted([placed.pk, shipped.pk])
    assert confirmed.pk not in listed_ids(response)


def test_orders_are_filtered_by_payment_method(api_client, store):
    OrderFactory(store=store, payment_method="cod")
    prepaid = OrderFactory(store=store, payment_method="prepaid")

    assert listed_ids(api_client.get(ORDERS, {"payment_method": "prepaid"})) == [prepaid.pk]


def test_orders_are_filtered_by_a_placed_at_range(api_client, store):
    OrderFactory(store=store, placed_at=PLACED_AT - timedelta(days=1))
    inside = OrderFactory(store=store, placed_at=PLACED_AT)
    OrderFactory(store=store, placed_at=PLACED_AT + timedelta(days=1))

    response = api_client.get(
        ORDERS,
        {
            "created_after": PLACED_AT.isoformat(),
            "created_before": (PLACED_AT + timedelta(hours=1)).isoformat(),
        },
    )

    assert listed_ids(response) == [inside.pk]


def test_a_far_off_date_filter_is_a_400_naming_the_filter(api_client):
    response = api_client.get(ORDERS, {"created_after": "9999-12-31T23:59:59-05:00"})

    assert response.status_code == 400
    assert list(response.json()) == ["created_after"]


@pytest.mark.parametrize("typed", ["0612345678", "+212612345678", "612345"])
def test_orders_are_found_by_the_customers_phone_local_e164_or_partial(api_client, store, typed):
    wanted = OrderFactory(store=store, customer__phone_raw="06 12 34 56 78")
    OrderFactory(store=store, customer__phone_raw="0698765432")

    assert listed_ids(api_client.get(ORDERS, {"phone": typed})) == [wanted.pk]


def test_orders_are_filtered_by_store_slug(store):
    second = OrderFactory(store__slug="second-shop")
    user = member_of(store)
    second.store.members.add(user)
    OrderFactory(store=store)

    response = client_with_token(user).get(ORDERS, {"store": "second-shop"})

    assert listed_ids(response) == [second.pk]


def test_the_list_is_paginated_by_50_by_default(api_client, store):
    OrderFactory.create_batch(51, store=store)

    body = api_client.get(ORDERS).json()

    assert (body["count"], len(body["results"])) == (51, 50)
    assert body["next"].endswith("?page=2")


def test_the_page_size_can_be_asked_for(api_client, store):
    OrderFactory.create_batch(3, store=store)

    body = api_client.get(ORDERS, {"page_size": 2, "page": 2}).json()

    assert (len(body["results"]), body["next"]) == (1, None)


def test_the_page_size_is_capped_at_200(api_client, store):
    OrderFactory.create_batch(201, store=store)

    body = api_client.get(ORDERS, {"page_size": 1000}).json()

    assert (body["count"], len(body["results"])) == (201, 200)


def test_the_list_makes_as_many_queries_for_30_orders_as_for_3(
    api_client, store, django_assert_max_num_queries
):
    OrderFactory.create_batch(3, store=store)
    with CaptureQueriesContext(connection) as for_three:
        api_client.get(ORDERS)
    OrderFactory.create_batch(27, store=store)

    with django_assert_max_num_queries(len(for_three.captured_queries)):
        response = api_client.get(ORDERS)

    assert len(response.json()["results"]) == 30


# --- detail --------------------------------------------------------------------------------------
def test_the_detail_has_the_timeline_in_order(api_client, store, user):
    order_id = api_client.post(ORDERS, order_body()).json()["id"]
    api_client.post(reverse("api:order-transitions", args=[order_id]), {"name": "confirm"})

    timeline = api_client.get(reverse("api:order", args=[order_id])).json()["timeline"]

    assert [(e["type"], e["from_status"], e["to_status"], e["source"]) for e in timeline] == [
        ("placed", "", "placed", "store"),
        ("confirmation_requested", "placed", "awaiting_confirmation", "automation"),
        ("automation_notified", "", "", "automation"),
        ("confirmed", "awaiting_confirmation", "confirmed", "agent"),
        ("automation_notified", "", "", "automation"),
    ]
    # The store's rules asked for confirmation and told the customer each time; the user created
    # the order and confirmed it.
    assert [e["actor"] for e in timeline] == [user.username, None, None, user.username, None]


def test_the_detail_has_the_orders_messages(api_client, store):
    order = OrderFactory(store=store)
    message = message_for(order, status="failed", error_code="invalid_recipient")

    messages = api_client.get(order_url(order)).json()["messages"]

    assert [(m["id"], m["status"], m["error_code"]) for m in messages] == [
        (message.pk, "failed", "invalid_recipient")
    ]


def test_the_detail_says_which_transitions_the_user_may_apply(store):
    order = order_in_status("awaiting_confirmation", store=store)
    agent = member_of(store, groups=["Confirmation agent"])

    body = client_with_token(agent).get(order_url(order)).json()

    assert body["available_transitions"] == ["confirm", "cancel"]


# --- transitions ---------------------------------------------------------------------------------
def test_a_transition_moves_the_order_as_the_user_and_returns_the_event(api_client, store, user):
    order = order_in_status("awaiting_confirmation", store=store)

    response = api_client.post(transitions_url(order), {"name": "confirm", "reason": "called, said yes"})

    assert response.status_code == 200
    assert (response.json()["to_status"], response.json()["actor"]) == ("confirmed", user.username)
    event = order.events.get(type="confirmed")
    assert (event.source, event.actor, event.reason) == ("agent", user, "called, said yes")


def test_an_illegal_transition_is_a_409_with_what_is_possible(api_client, store):
    order = order_in_status("awaiting_confirmation", store=store)

    response = api_client.post(transitions_url(order), {"name": "ship"})

    assert response.status_code == 409
    assert response.json()["status"] == "awaiting_confirmation"
    assert response.json()["available_transitions"] == ["confirm", "cancel"]


def test_a_transition_the_user_may_not_apply_is_a_403(store):
    order = order_in_status("confirmed", store=store)
    agent = member_of(store, groups=["Confirmation agent"])

    response = client_with_token(agent).post(transitions_url(order), {"name": "ship"})

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == "confirmed"


def test_an_unknown_transition_is_a_400_on_name(api_client, store):
    order = order_in_status("awaiting_confirmation", store=store)

    response = api_client.post(transitions_url(order), {"name": "teleport"})

    assert response.status_code == 400
    assert list(response.json()) == ["name"]


def test_a_transition_on_a_status_the_caller_did_not_see_is_a_409(api_client, store):
    order = order_in_status("confirmed", store=store)

    response = api_client.post(transitions_url(order), {"name": "cancel", "expected_status": "placed"})

    assert response.status_code == 409
    order.refresh_from_db()
    assert order.status == "confirmed"


def test_a_transition_on_another_stores_order_is_not_found(api_client, other_store):
    theirs = order_in_status("awaiting_confirmation", store=other_store)

    response = api_client.post(transitions_url(theirs), {"name": "confirm"})

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "awaiting_confirmation"


def test_money_is_written_as_decimal_strings(api_client, store):
    order = OrderFactory(store=store, total_amount=Decimal("1249.50"))

    assert api_client.get(order_url(order)).json()["total_amount"] == "1249.50"
