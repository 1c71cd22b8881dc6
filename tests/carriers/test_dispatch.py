"""Dispatch: a selection of orders sent to one carrier account in a batch, each parcel once."""

import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from carriers.adapters.sandbox import SandboxCarrier
from carriers.models import CarrierCity, DispatchBatch, Shipment
from carriers.services import carrier_cities_sync, dispatch_batch_create, dispatch_batch_run
from carriers.services.dispatch import SKIP_HAS_PARCEL, SKIP_STATUS, SKIP_STORE
from orders.models import OrderEvent, Store
from orders.transitions import OrderStatus
from tests.factories import CarrierAccountFactory, UserFactory, order_in_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    return CarrierAccountFactory()


@pytest.fixture
def agent():
    return UserFactory()


def confirmed(account, count=1, **kwargs):
    return [order_in_status(OrderStatus.CONFIRMED, store=account.store, **kwargs) for _ in range(count)]


def run(account, orders, agent):
    batch = dispatch_batch_create(account, orders, agent)
    return dispatch_batch_run(batch.pk)


def count_creates(monkeypatch):
    calls = []
    original = SandboxCarrier.create_parcel

    def create(self, parcel):
        calls.append(parcel.reference)
        return original(self, parcel)

    monkeypatch.setattr(SandboxCarrier, "create_parcel", create)
    return calls


def test_each_confirmed_cod_order_gets_its_parcel_with_tracking_number_fee_and_cod_amount(account, agent):
    orders = confirmed(account, 3)

    batch = run(account, orders, agent)

    assert (batch.status, batch.total, batch.created_count, batch.failed_count) == ("done", 3, 3, 0)
    for order in orders:
        shipment = Shipment.objects.get(order=order)
        assert shipment.create_status == Shipment.CreateStatus.CREATED
        assert shipment.tracking_number.startswith("SBX")
        assert (shipment.fee, shipment.cod_amount) == (Decimal("25.00"), order.cod_amount)
        assert (shipment.account, shipment.batch) == (account, batch)
        assert batch.results[str(order.pk)]["tracking_number"] == shipment.tracking_number


def test_a_store_that_ships_at_creation_has_its_orders_moved_to_shipped_with_the_parcel(account, agent):
    [order] = confirmed(account)

    run(account, [order], agent)

    order.refresh_from_db()
    shipment = Shipment.objects.get(order=order)
    shipped = order.events.get(type="shipped")
    assert order.status == OrderStatus.SHIPPED
    assert shipped.source == OrderEvent.Source.CARRIER
    assert shipped.payload["tracking_number"] == shipment.tracking_number
    assert (shipped.payload["carrier"], shipped.payload["shipment"]) == ("Sandbox", shipment.pk)
    assert shipped.idempotency_key == f"dispatch:{shipment.pk}:ship"


def test_a_store_that_ships_at_pick_up_leaves_its_orders_confirmed_with_their_parcel(account, agent):
    Store.objects.filter(pk=account.store_id).update(ship_at=Store.ShipAt.PICKUP)
    [order] = confirmed(account)

    batch = run(account, [order], agent)

    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    assert batch.created_count == 1
    assert Shipment.objects.get(order=order).create_status == Shipment.CreateStatus.CREATED


def test_a_processing_order_goes_too(account, agent):
    order = order_in_status(OrderStatus.PROCESSING, store=account.store)

    batch = run(account, [order], agent)

    assert batch.created_count == 1


def test_an_order_not_yet_confirmed_is_skipped_with_its_status_as_the_reason(account, agent):
    waiting = order_in_status(OrderStatus.AWAITING_CONFIRMATION, store=account.store)
    [ready] = confirmed(account)

    batch = run(account, [waiting, ready], agent)

    assert batch.results[str(waiting.pk)] == {
        "outcome": "skipped",
        "number": waiting.number,
        "reason": SKIP_STATUS,
        "status": "awaiting_confirmation",
    }
    assert (batch.created_count, batch.skipped_count) == (1, 1)
    assert not Shipment.objects.filter(order=waiting).exists()


def test_another_stores_order_is_skipped(account, agent):
    theirs = order_in_status(OrderStatus.CONFIRMED)

    batch = run(account, [theirs], agent)

    assert batch.results[str(theirs.pk)]["reason"] == SKIP_STORE
    assert not Shipment.objects.filter(order=theirs).exists()


def test_an_order_with_a_parcel_at_another_account_is_skipped(account, agent):
    [order] = confirmed(account)
    elsewhere = CarrierAccountFactory(store=account.store)
    Store.objects.filter(pk=account.store_id).update(ship_at=Store.ShipAt.PICKUP)
    run(elsewhere, [order], agent)

    batch = run(account, [order], agent)

    assert batch.results[str(order.pk)]["reason"] == SKIP_HAS_PARCEL
    assert Shipment.objects.filter(order=order).count() == 1


def test_running_a_batch_twice_creates_no_parcel_twice(account, agent, monkeypatch):
    calls = count_creates(monkeypatch)
    orders = confirmed(account, 2)
    batch = dispatch_batch_create(account, orders, agent)
    dispatch_batch_run(batch.pk)

    again = dispatch_batch_run(batch.pk)

    assert calls == [order.number for order in orders]
    assert Shipment.objects.filter(order__in=orders).count() == 2
    assert again.created_count == 2


def test_a_batch_whose_worker_died_half_way_finishes_without_sending_a_parcel_twice(
    account, agent, monkeypatch
):
    calls = count_creates(monkeypatch)
    orders = confirmed(account, 2)
    batch = dispatch_batch_create(account, orders, agent)
    dispatch_batch_run(batch.pk)
    # as if the worker died after the first order's parcel and move, before saving its result
    DispatchBatch.objects.filter(pk=batch.pk).update(status="running", results={}, created_count=0)

    again = dispatch_batch_run(batch.pk)

    assert calls == [order.number for order in orders]
    assert Shipment.objects.filter(order__in=orders).count() == 2
    assert (again.status, again.created_count) == ("done", 2)
    assert all(again.results[str(order.pk)]["outcome"] == "created" for order in orders)


def test_a_carrier_refusal_for_one_order_is_reported_and_the_others_still_go(account, agent):
    [good, other_good] = confirmed(account, 2)
    [no_address] = confirmed(account, shipping_address="")

    batch = run(account, [good, no_address, other_good], agent)

    assert (batch.created_count, batch.failed_count) == (2, 1)
    result = batch.results[str(no_address.pk)]
    assert result["outcome"] == "failed"
    assert "invalid_address" in result["error"]
    no_address.refresh_from_db()
    assert no_address.status == OrderStatus.CONFIRMED
    assert Shipment.objects.get(order=no_address).create_status == Shipment.CreateStatus.FAILED


def test_the_merged_label_pdf_has_one_page_per_created_parcel(account, agent):
    orders = confirmed(account, 3)
    [no_address] = confirmed(account, shipping_address="")

    batch = run(account, [*orders, no_address], agent)

    assert len(PdfReader(io.BytesIO(bytes(batch.label_pdf))).pages) == 3


def test_the_parcel_is_sent_with_the_carriers_id_of_the_customers_city(account, agent, monkeypatch):
    carrier_cities_sync(account)
    sent = []
    original = SandboxCarrier.create_parcel

    def create(self, parcel):
        sent.append(parcel.city)
        return original(self, parcel)

    monkeypatch.setattr(SandboxCarrier, "create_parcel", create)
    [order] = confirmed(account, shipping_city="casablanca ")

    batch = run(account, [order], agent)

    assert sent == [CarrierCity.objects.get(carrier="sandbox", name="Casablanca").carrier_city_id]
    assert batch.results[str(order.pk)]["city"] == "key"


def test_progress_counts_are_saved_after_each_order(account, agent, monkeypatch):
    orders = confirmed(account, 3)
    batch = dispatch_batch_create(account, orders, agent)
    seen = []
    original = SandboxCarrier.create_parcel

    def create(self, parcel):
        seen.append(DispatchBatch.objects.get(pk=batch.pk).created_count)
        return original(self, parcel)

    monkeypatch.setattr(SandboxCarrier, "create_parcel", create)

    dispatch_batch_run(batch.pk)

    assert seen == [0, 1, 2]
