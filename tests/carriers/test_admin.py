"""Carriers in admin: accounts, unmapped statuses and their mapping, shipments on the order page."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from carriers.models import CarrierCity, CityCorrection, StatusMapping, TrackingEvent
from carriers.services import carrier_cities_sync, carrier_city_match
from orders.transitions import OrderStatus
from tests.carriers.helpers import report
from tests.factories import ShipmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(client):
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    return user


def test_the_unmapped_statuses_page_lists_each_unknown_code_with_its_count_and_a_map_link(client, superuser):
    shipment = ShipmentFactory()
    report(shipment, "Colis chez le voisin", 2, text="laissé au voisin")
    report(shipment, "Colis chez le voisin", 5, text="toujours chez le voisin")

    page = client.get(reverse("admin:carriers_statusmapping_unmapped"))

    [row] = page.context["rows"]
    assert (row["carrier"], row["raw_code_folded"], row["count"]) == ("sandbox", "colis chez le voisin", 2)
    assert row["map_url"] in page.content.decode().replace("&amp;", "&")
    assert "carrier=sandbox" in row["map_url"]


def test_mapping_a_status_in_admin_reapplies_the_waiting_events_and_the_order_moves(client, superuser):
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)
    report(shipment, "Chez le livreur", 20)

    response = client.post(
        reverse("admin:carriers_statusmapping_add"),
        {"carrier": "sandbox", "account": "", "raw_code": "Chez le livreur", "state": "out_for_delivery"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert (
        StatusMapping.objects.get(carrier="sandbox", raw_code="chez le livreur").state == "out_for_delivery"
    )
    assert TrackingEvent.objects.get(raw_code="Chez le livreur").applied is True
    shipment.order.refresh_from_db()
    assert shipment.order.status == OrderStatus.OUT_FOR_DELIVERY


def test_the_map_action_opens_the_mapping_form_prefilled(client, superuser):
    shipment = ShipmentFactory()
    report(shipment, "Chez le livreur", 20)
    event = TrackingEvent.objects.get()

    response = client.post(
        reverse("admin:carriers_trackingevent_changelist"),
        {"action": "map_status", "_selected_action": [event.pk]},
    )
    form = client.get(response.url)

    assert form.context["adminform"].form.initial["raw_code"] == "chez le livreur"
    assert form.context["adminform"].form.initial["carrier"] == "sandbox"


def test_the_account_page_says_which_variables_are_set_and_never_their_values(client, superuser, monkeypatch):
    shipment = ShipmentFactory()
    monkeypatch.setenv("LIVRA_SBX_WEBHOOK_SECRET", "do-not-show-me")

    page = client.get(reverse("admin:carriers_carrieraccount_change", args=[shipment.account.pk]))

    text = page.content.decode()
    assert "LIVRA_SBX_WEBHOOK_SECRET" in text
    assert "do-not-show-me" not in text


def test_the_order_page_shows_its_shipments_tracking_events(client, superuser):
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)
    report(shipment, "Chez le livreur", 20)

    page = client.get(reverse("admin:orders_order_change", args=[shipment.order.pk]))

    text = page.content.decode()
    assert shipment.tracking_number in text
    assert "PICKED_UP" in text and "Chez le livreur" in text


def test_tracking_events_are_append_only_in_admin(client, superuser):
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)
    event = TrackingEvent.objects.get()

    page = client.get(reverse("admin:carriers_trackingevent_change", args=[event.pk]))
    deleted = client.post(reverse("admin:carriers_trackingevent_delete", args=[event.pk]), {"post": "yes"})

    assert 'name="_save"' not in page.content.decode()
    assert deleted.status_code == 403
    assert TrackingEvent.objects.filter(pk=event.pk).exists()


def test_a_store_member_reads_the_carriers_default_mappings_but_cannot_change_them(client):
    shipment = ShipmentFactory()
    member = UserFactory(stores=[shipment.account.store])
    member.user_permissions.add(*Permission.objects.filter(content_type__app_label="carriers"))
    client.force_login(member)
    default = StatusMapping.objects.get(carrier="sandbox", account=None, raw_code="delivered")

    saved = client.post(
        reverse("admin:carriers_statusmapping_change", args=[default.pk]),
        {"carrier": "sandbox", "raw_code": "delivered", "state": "lost"},
    )

    assert saved.status_code == 403
    assert StatusMapping.objects.get(pk=default.pk).state == "delivered"


def test_an_agent_corrects_a_customers_city_and_the_next_order_written_so_matches(client):
    shipment = ShipmentFactory()
    account = shipment.account
    carrier_cities_sync(account)
    rabat = CarrierCity.objects.get(carrier="sandbox", name="Rabat")
    agent = UserFactory(stores=[account.store])
    agent.user_permissions.add(*Permission.objects.filter(content_type__app_label="carriers"))
    client.force_login(agent)

    response = client.post(
        reverse("admin:carriers_citycorrection_add"),
        {"store": account.store.pk, "typed": "Témara", "city": rabat.pk},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    correction = CityCorrection.objects.get(store=account.store)
    assert (correction.carrier, correction.created_by) == ("sandbox", agent)
    assert carrier_city_match(account, "TEMARA").city == rabat
