"""Recording consent and listing messages through the API, scoped to the user's stores."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from messaging.models import Consent, ConsentEvent
from tests.api.conftest import client_with_token, member_of, message_for
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

CONSENTS = reverse("api:consents")
MESSAGES = reverse("api:messages")


def listed_ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


# --- consent -------------------------------------------------------------------------------------
def test_consent_is_recorded_with_the_api_and_the_user_as_evidence(api_client, store, user):
    customer = CustomerFactory(store=store)

    response = api_client.post(
        CONSENTS,
        {"customer": customer.pk, "channel": "sms", "status": "opted_out", "note": "asked on the phone"},
    )

    assert response.status_code == 201
    consent = Consent.objects.get(customer=customer, channel="sms")
    assert (consent.status, consent.source, consent.recorded_by) == ("opted_out", "api", user)
    assert consent.evidence == {"api_user_id": user.pk, "note": "asked on the phone"}
    assert response.json()["status"] == "opted_out"


def test_each_consent_record_appends_its_evidence(api_client, store):
    customer = CustomerFactory(store=store)

    for status in ("opted_in", "opted_out"):
        api_client.post(CONSENTS, {"customer": customer.pk, "channel": "whatsapp", "status": status})

    events = ConsentEvent.objects.filter(customer=customer, channel="whatsapp")
    assert list(events.values_list("status", "source")) == [("opted_in", "api"), ("opted_out", "api")]


def test_a_marketing_opt_in_is_recorded_as_such(api_client, store):
    customer = CustomerFactory(store=store)

    api_client.post(
        CONSENTS, {"customer": customer.pk, "channel": "email", "status": "opted_in", "marketing": True}
    )

    assert Consent.objects.get(customer=customer, channel="email").marketing is True


def test_consent_for_another_stores_customer_is_a_400_and_records_nothing(api_client, other_store):
    theirs = CustomerFactory(store=other_store)

    response = api_client.post(CONSENTS, {"customer": theirs.pk, "channel": "sms", "status": "opted_in"})

    assert response.status_code == 400
    assert response.json() == {"customer": [f"You have no customer {theirs.pk}."]}
    assert not Consent.objects.exists()


def test_recording_consent_needs_the_add_consent_permission(store):
    customer = CustomerFactory(store=store)
    reader = member_of(store, groups=())

    response = client_with_token(reader).post(
        CONSENTS, {"customer": customer.pk, "channel": "sms", "status": "opted_in"}
    )

    assert response.status_code == 403
    assert not Consent.objects.exists()


def test_an_opt_out_with_marketing_is_a_400_on_marketing(api_client, store):
    customer = CustomerFactory(store=store)

    response = api_client.post(
        CONSENTS, {"customer": customer.pk, "channel": "sms", "status": "opted_out", "marketing": True}
    )

    assert response.status_code == 400
    assert list(response.json()) == ["marketing"]


def test_an_unknown_channel_is_a_400_on_channel(api_client, store):
    customer = CustomerFactory(store=store)

    response = api_client.post(CONSENTS, {"customer": customer.pk, "channel": "fax", "status": "opted_in"})

    assert response.status_code == 400
    assert list(response.json()) == ["channel"]


# --- messages ------------------------------------------------------------------------------------
def test_listing_messages_needs_a_token():
    assert APIClient().get(MESSAGES).status_code == 401


def test_messages_of_another_stores_orders_are_not_listed(api_client, store, other_store):
    ours = message_for(OrderFactory(store=store))
    message_for(OrderFactory(store=other_store))

    assert listed_ids(api_client.get(MESSAGES)) == [ours.pk]


def test_messages_are_listed_newest_first(api_client, store):
    order = OrderFactory(store=store)
    first, second = message_for(order), message_for(order)

    assert listed_ids(api_client.get(MESSAGES)) == [second.pk, first.pk]


def test_messages_are_filtered_by_order(api_client, store):
    wanted = message_for(OrderFactory(store=store))
    message_for(OrderFactory(store=store))

    assert listed_ids(api_client.get(MESSAGES, {"order": wanted.order_id})) == [wanted.pk]


def test_messages_are_filtered_by_status(api_client, store):
    order = OrderFactory(store=store)
    failed = message_for(order, status="failed")
    message_for(order, status="delivered")

    assert listed_ids(api_client.get(MESSAGES, {"status": "failed"})) == [failed.pk]


def test_messages_are_filtered_by_channel(api_client, store):
    order = OrderFactory(store=store)
    message_for(order, channel="whatsapp")
    sms = message_for(order, channel="sms")

    assert listed_ids(api_client.get(MESSAGES, {"channel": "sms"})) == [sms.pk]


def test_an_order_filter_that_is_not_a_number_is_a_400(api_client):
    response = api_client.get(MESSAGES, {"order": "1.5"})

    assert response.status_code == 400
    assert list(response.json()) == ["order"]


def test_an_order_filter_too_large_for_the_database_is_a_400(api_client):
    # A foreign key lookup has no overflow guard: SQLite's driver and PostgreSQL would both fail.
    response = api_client.get(MESSAGES, {"order": 2**70})

    assert response.status_code == 400
    assert list(response.json()) == ["order"]


def test_the_messages_list_is_paginated(api_client, store):
    order = OrderFactory(store=store)
    for _ in range(3):
        message_for(order)

    body = api_client.get(MESSAGES, {"page_size": 2}).json()

    assert (body["count"], len(body["results"])) == (3, 2)
