"""Parcels at the carrier through the adapter: created once, a lost create reconciled, never re-sent."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader

from carriers.adapters import CarrierError, ErrorKind
from carriers.adapters.sandbox import SandboxCarrier
from carriers.models import Shipment
from carriers.services import (
    shipment_cancel,
    shipment_create,
    shipment_reconcile,
    shipments_label_pdf,
    shipments_track,
)
from carriers.services.parcels import shipment_tracking_url
from orders.transitions import OrderStatus
from tests.factories import CarrierAccountFactory, order_in_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    return CarrierAccountFactory()


@pytest.fixture
def order(account):
    return order_in_status(OrderStatus.CONFIRMED, store=account.store)


def count_creates(monkeypatch, *, then_time_out=False):
    calls = []
    original = SandboxCarrier.create_parcel

    def create(self, parcel):
        calls.append(parcel.reference)
        created = original(self, parcel)
        if then_time_out:
            raise CarrierError(ErrorKind.UNKNOWN, "timeout", "no answer in 10 s")
        return created

    monkeypatch.setattr(SandboxCarrier, "create_parcel", create)
    return calls


def test_a_created_parcel_gives_the_shipment_its_tracking_number_fee_and_cod_amount(order, account):
    shipment = shipment_create(order, account)

    shipment.refresh_from_db()
    assert shipment.create_status == Shipment.CreateStatus.CREATED
    assert shipment.tracking_number.startswith("SBX")
    assert (shipment.fee, shipment.cod_amount) == (Decimal("25.00"), Decimal("249.00"))
    assert shipment.carrier_reference == order.number


def test_a_created_parcel_gets_the_carriers_tracking_page_for_the_customer(order, account):
    shipment = shipment_create(order, account)

    shipment.refresh_from_db()
    assert shipment.tracking_url == f"https://tracking.example.com/sandbox/{shipment.tracking_number}"


def test_an_accounts_own_tracking_page_wins_over_the_carriers(order, account):
    account.tracking_url_template = "https://suivi.atlas-souk.ma/colis/{number}"
    account.save()

    shipment = shipment_create(order, account)

    shipment.refresh_from_db()
    assert shipment.tracking_url == f"https://suivi.atlas-souk.ma/colis/{shipment.tracking_number}"


def test_a_carrier_without_a_known_tracking_page_gives_no_link(account):
    account.carrier = "sendit"

    assert shipment_tracking_url(account, "SDT123") == ""


def test_a_created_parcel_is_due_for_the_poll_sweeps_safety_net(order, account):
    shipment = shipment_create(order, account)

    shipment.refresh_from_db()
    assert shipment.next_poll_at - shipment.created_at > timedelta(hours=5)


def test_creating_the_parcel_of_an_order_twice_sends_it_once(order, account, monkeypatch):
    calls = count_creates(monkeypatch)

    first = shipment_create(order, account)
    again = shipment_create(order, account)

    assert first.pk == again.pk
    assert calls == [order.number]


def test_a_timed_out_create_is_recorded_unknown_and_not_sent_again(order, account, monkeypatch):
    calls = count_creates(monkeypatch, then_time_out=True)

    shipment = shipment_create(order, account)

    assert shipment.create_status == Shipment.CreateStatus.UNKNOWN
    assert shipment.tracking_number == ""
    monkeypatch.undo()
    calls_after = count_creates(monkeypatch)
    reconciled = shipment_create(order, account)  # asked again: looked up, not re-sent
    assert calls == [order.number] and calls_after == []
    assert reconciled.create_status == Shipment.CreateStatus.CREATED
    assert reconciled.tracking_number.startswith("SBX")


def test_an_unknown_create_the_carrier_never_received_becomes_failed_and_may_be_sent_again(order, account):
    shipment = Shipment.objects.create(
        order=order,
        account=account,
        carrier="sandbox",
        carrier_reference=order.number,
        create_status=Shipment.CreateStatus.UNKNOWN,
        source="carrier",
    )

    shipment_reconcile(shipment)

    assert Shipment.objects.get(pk=shipment.pk).create_status == Shipment.CreateStatus.FAILED
    assert shipment_create(order, account).create_status == Shipment.CreateStatus.CREATED


def test_an_address_the_carrier_refuses_fails_the_create_with_its_answer(account):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store, shipping_city="")

    shipment = shipment_create(order, account)

    assert shipment.create_status == Shipment.CreateStatus.FAILED
    assert "invalid_address" in shipment.create_error


def test_a_cancelled_parcel_voids_its_shipment(order, account):
    shipment = shipment_create(order, account)

    shipment_cancel(shipment)

    assert Shipment.objects.get(pk=shipment.pk).create_status == Shipment.CreateStatus.CANCELLED


def test_the_labels_of_parcels_at_two_accounts_come_as_one_pdf(order, account):
    second_account = CarrierAccountFactory(store=account.store)
    other = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    shipments = [shipment_create(order, account), shipment_create(other, second_account)]

    pdf = PdfReader(io.BytesIO(shipments_label_pdf(shipments)))

    assert len(pdf.pages) == 2
    assert shipments[0].tracking_number in pdf.pages[0].extract_text()
    assert shipments[1].tracking_number in pdf.pages[1].extract_text()


def test_tracking_parcels_records_what_the_carrier_says_and_moves_the_order(order, account):
    shipment = shipment_create(order, account)
    SandboxCarrier().record_event(shipment.tracking_number, "PICKED_UP")

    result = shipments_track(account, [shipment])

    assert [event.raw_code for event in result.recorded] == ["CREATED", "PICKED_UP"]
    shipment.refresh_from_db()
    assert shipment.last_polled_at is not None
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
