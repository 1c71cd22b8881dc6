"""The transition API's "ship" with the parcel: carrier, tracking number and link recorded with it."""

import pytest
from django.urls import reverse

from carriers.models import Shipment
from messaging.models import Message
from tests.factories import messaging_at_any_hour, order_in_status

pytestmark = pytest.mark.django_db

LINK = "https://tracking.example.ma/CX123456789MA"
PARCEL = {"carrier": "Amana", "tracking_number": "CX123456789MA", "tracking_url": LINK}


def transitions_url(order) -> str:
    return reverse("api:order-transitions", args=[order.pk])


def test_ship_with_a_parcel_records_the_shipment_and_puts_it_in_the_event(api_client, store, user):
    order = order_in_status("confirmed", store=store)

    response = api_client.post(transitions_url(order), {"name": "ship", **PARCEL}, format="json")

    assert response.status_code == 200, response.json()
    shipment = Shipment.objects.get(order=order)
    assert (shipment.carrier, shipment.tracking_number, shipment.tracking_url) == tuple(PARCEL.values())
    assert shipment.source == "agent"
    event = order.events.get(type="shipped")
    assert event.payload == {"api_user_id": user.pk, **PARCEL}
    assert (event.actor, event.source) == (user, "agent")


def test_the_customers_shipped_message_gives_the_tracking_link(
    api_client, store, django_capture_on_commit_callbacks
):
    messaging_at_any_hour(store)  # sent now, not at the end of quiet hours, whatever the clock says
    order = order_in_status("confirmed", store=store)

    with django_capture_on_commit_callbacks(execute=True):
        api_client.post(transitions_url(order), {"name": "ship", **PARCEL}, format="json")

    message = Message.objects.filter(order=order, event="order_shipped").exclude(body="").get()
    assert LINK in message.body
    assert message.template.event == "order_shipped"


def test_a_refused_ship_records_no_shipment(api_client, store):
    order = order_in_status("awaiting_confirmation", store=store)

    response = api_client.post(transitions_url(order), {"name": "ship", **PARCEL}, format="json")

    assert response.status_code == 409
    assert not Shipment.objects.filter(order=order).exists()


def test_a_parcel_is_only_for_the_ship_transition(api_client, store):
    order = order_in_status("awaiting_confirmation", store=store)

    response = api_client.post(
        transitions_url(order), {"name": "confirm", "tracking_number": "CX1"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"tracking_number": ["Only for the `ship` transition."]}


def test_a_tracking_url_that_is_not_a_url_is_a_400(api_client, store):
    order = order_in_status("confirmed", store=store)

    response = api_client.post(
        transitions_url(order), {"name": "ship", "tracking_url": "not a link"}, format="json"
    )

    assert response.status_code == 400
    order.refresh_from_db()
    assert order.status == "confirmed"


def test_the_schema_documents_the_parcel_fields_of_the_transition(api_client):
    schema = api_client.get(reverse("api:schema"), {"format": "json"}).json()

    fields = schema["components"]["schemas"]["OrderTransitionInputRequest"]["properties"]
    assert {"carrier", "tracking_number", "tracking_url"} <= set(fields)
