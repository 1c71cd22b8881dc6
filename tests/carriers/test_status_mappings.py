"""The raw → state tables: defaults from the adapters, editable, and a mapping re-applies."""

from io import StringIO

import pytest
from django.core.management import call_command

from carriers.adapters import Reason, State, adapter_class, adapter_names, fold
from carriers.models import StatusMapping, TrackingEvent, TrackingState
from carriers.services import status_mapping_set, status_mappings_sync
from orders.transitions import OrderStatus
from tests.carriers.helpers import report
from tests.factories import CarrierAccountFactory, ShipmentFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("carrier", adapter_names())
def test_every_default_mapping_of_each_adapter_maps_to_a_state_and_a_reason(carrier):
    assert adapter_class(carrier).default_status_map
    for raw, (state, reason) in adapter_class(carrier).default_status_map.items():
        assert raw == fold(raw), raw  # keyed as the table keys them
        assert State(state) in State, raw
        assert Reason(reason) in Reason, raw
        assert state in TrackingState.values, raw


def test_the_tracking_states_people_read_are_the_adapters_states():
    assert set(TrackingState.values) == {state.value for state in State}


def test_an_account_brings_its_carriers_default_mappings():
    StatusMapping.objects.all().delete()

    CarrierAccountFactory()

    assert StatusMapping.objects.filter(carrier="sandbox", account=None).count() == len(
        adapter_class("sandbox").default_status_map
    )


def test_syncing_the_defaults_again_adds_nothing_and_keeps_an_edit():
    status_mappings_sync("sandbox")
    StatusMapping.objects.filter(carrier="sandbox", raw_code="on_hold").update(state="in_transit")

    added = status_mappings_sync("sandbox")
    call_command("carrier_status_mappings_sync", "sandbox", stdout=StringIO())

    assert added == 0
    assert (
        StatusMapping.objects.get(carrier="sandbox", account=None, raw_code="on_hold").state == "in_transit"
    )


def test_a_deleted_default_comes_back_with_the_next_sync():
    StatusMapping.objects.filter(carrier="sandbox", raw_code="delivered").delete()

    assert status_mappings_sync("sandbox") == 1


def test_mapping_an_unknown_status_reapplies_its_waiting_events_and_the_order_moves():
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)
    report(shipment, "En route vers l'agence", 5)

    mapping, reapplied = status_mapping_set("sandbox", "En route vers l'agence ", "in_transit")

    assert mapping.raw_code == "en route vers l'agence"
    assert reapplied == 1
    event = TrackingEvent.objects.get(raw_code="En route vers l'agence")
    assert (event.mapped, event.state, event.applied) == (True, "in_transit", True)
    shipment.order.refresh_from_db()
    assert shipment.order.status == OrderStatus.IN_TRANSIT


def test_an_accounts_own_mapping_wins_over_the_carriers_default():
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)
    StatusMapping.objects.create(
        carrier="sandbox", account=shipment.account, raw_code="at_hub", state="out_for_delivery"
    )

    report(shipment, "AT_HUB", 3)

    shipment.order.refresh_from_db()
    assert shipment.order.status == OrderStatus.OUT_FOR_DELIVERY
