"""The order follows the parcel: carrier reports become events, and mapped ones move the order."""

from decimal import Decimal

import pytest

from carriers.adapters import TrackingUpdate
from carriers.models import Shipment, TrackingEvent
from carriers.services import tracking_updates_record
from messaging.models import Message, Notification
from messaging.services.dispatch import outbox_drain
from orders.models import OrderEvent
from orders.transitions import OrderStatus
from tests.carriers.helpers import at, report
from tests.factories import ShipmentFactory, order_in_status

pytestmark = pytest.mark.django_db


def status_of(shipment) -> str:
    shipment.order.refresh_from_db()
    return shipment.order.status


def test_a_pick_up_walks_a_confirmed_order_to_shipped():
    shipment = ShipmentFactory()

    report(shipment, "PICKED_UP", 1)

    assert status_of(shipment) == OrderStatus.SHIPPED
    event = TrackingEvent.objects.get(shipment=shipment)
    assert event.applied is True
    assert event.order_event.to_status == OrderStatus.SHIPPED
    assert event.order_event.source == OrderEvent.Source.CARRIER


def test_a_repeated_event_is_recorded_once_and_moves_the_order_once():
    shipment = ShipmentFactory()

    first = report(shipment, "PICKED_UP", 1, event_id="e-1")
    again = report(shipment, "PICKED_UP", 1, event_id="e-1")

    assert (len(first.recorded), len(again.recorded), again.duplicates) == (1, 0, 1)
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 1
    assert shipment.order.events.filter(type="shipped").count() == 1


def test_an_event_without_a_carrier_id_is_deduplicated_by_its_number_code_and_time():
    shipment = ShipmentFactory()

    report(shipment, "PICKED_UP", 1)
    report(shipment, "Picked_up", 1)  # the same code, as the carrier sent it a second time
    report(shipment, "PICKED_UP", 1)

    assert TrackingEvent.objects.filter(shipment=shipment).count() == 2  # the raw codes differ


def test_a_report_without_a_carrier_time_or_id_sent_twice_is_recorded_once():
    shipment = ShipmentFactory()
    update = TrackingUpdate(shipment.tracking_number, "PICKED_UP", raw_text="Ramassé à Casablanca")

    tracking_updates_record(shipment.account, [update], TrackingEvent.Source.POLL)
    again = tracking_updates_record(shipment.account, [update], TrackingEvent.Source.POLL)

    assert again.duplicates == 1
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 1


def test_an_unknown_raw_status_is_kept_flagged_and_does_not_move_the_order():
    shipment = ShipmentFactory()

    report(shipment, "PICKED_UP", 1)
    report(shipment, "Colis chez le voisin", 2, text="laissé au voisin")

    event = TrackingEvent.objects.get(raw_code="Colis chez le voisin")
    assert (event.mapped, event.unmapped, event.state, event.applied) == (False, True, "", False)
    assert status_of(shipment) == OrderStatus.SHIPPED
    assert Shipment.objects.get(pk=shipment.pk).reported_status == "Colis chez le voisin"


def test_a_late_in_transit_after_delivered_does_not_move_the_order_back():
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)
    report(shipment, "DELIVERED", 30)

    report(shipment, "IN_TRANSIT", 5)  # sent by the carrier long ago, arriving now

    assert status_of(shipment) == OrderStatus.DELIVERED
    late = TrackingEvent.objects.get(raw_code="IN_TRANSIT")
    assert late.applied is False
    assert Shipment.objects.get(pk=shipment.pk).state == "delivered"


def test_a_new_attempt_after_a_failed_delivery_moves_the_order_forward():
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)
    report(shipment, "OUT_FOR_DELIVERY", 20)
    report(shipment, "UNREACHABLE", 24)

    report(shipment, "OUT_FOR_DELIVERY", 44)

    assert status_of(shipment) == OrderStatus.OUT_FOR_DELIVERY
    assert Shipment.objects.get(pk=shipment.pk).attempts == 1


def test_a_late_out_for_delivery_from_before_the_failure_is_not_a_new_attempt():
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)
    report(shipment, "UNREACHABLE", 24)  # the carrier skipped reporting the round itself

    report(shipment, "OUT_FOR_DELIVERY", 20)

    assert status_of(shipment) == OrderStatus.DELIVERY_FAILED


def test_a_failed_delivery_puts_its_reason_on_the_timeline():
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)
    report(shipment, "OUT_FOR_DELIVERY", 20)

    report(shipment, "REFUSED", 24)

    failed = shipment.order.events.get(type="delivery_failed")
    assert failed.reason == "Refused"
    assert failed.source == OrderEvent.Source.CARRIER


def test_delivered_records_the_cod_cash_collected_on_the_shipment():
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)

    report(shipment, "DELIVERED", 26)

    shipment.refresh_from_db()
    assert status_of(shipment) == OrderStatus.DELIVERED
    assert shipment.cod_collected_amount == Decimal("249.00")
    assert shipment.cod_collected_at == at(26)


def test_out_for_delivery_tells_the_customer_through_the_stores_rules():
    # The default rule "Out for delivery: the amount to have ready" (its event: out_for_delivery).
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)

    report(shipment, "OUT_FOR_DELIVERY", 20)

    assert Notification.objects.filter(order=shipment.order, event="out_for_delivery").exists()
    outbox_drain()  # sent through the store's sandbox provider
    message = Message.objects.get(order=shipment.order, event="out_for_delivery")
    assert "249" in message.body  # the amount to have ready


def test_a_return_walks_the_order_to_return_initiated_then_returned():
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)
    report(shipment, "OUT_FOR_DELIVERY", 20)
    report(shipment, "REFUSED", 24)

    report(shipment, "RETURNING", 30)
    assert status_of(shipment) == OrderStatus.RTO_INITIATED
    report(shipment, "RETURNED", 72)
    assert status_of(shipment) == OrderStatus.RETURNED


def test_a_cancelled_parcel_voids_the_shipment_and_leaves_the_order_alone():
    shipment = ShipmentFactory()

    report(shipment, "CANCELLED", 1)

    shipment.refresh_from_db()
    assert shipment.create_status == Shipment.CreateStatus.CANCELLED
    assert status_of(shipment) == OrderStatus.CONFIRMED


def test_a_lost_parcel_is_flagged_on_the_shipment_and_leaves_the_order_alone():
    shipment = ShipmentFactory()
    report(shipment, "PICKED_UP", 1)

    report(shipment, "LOST", 50)

    shipment.refresh_from_db()
    assert (shipment.state, shipment.reason) == ("lost", "lost")
    assert status_of(shipment) == OrderStatus.SHIPPED


def test_an_order_still_awaiting_confirmation_is_not_moved_by_a_pick_up():
    order = order_in_status(OrderStatus.AWAITING_CONFIRMATION)
    shipment = ShipmentFactory(order=order, account__store=order.store)

    report(shipment, "PICKED_UP", 1)

    event = TrackingEvent.objects.get(shipment=shipment)
    assert (event.mapped, event.applied) == (True, False)
    assert event.apply_note
    assert status_of(shipment) == OrderStatus.AWAITING_CONFIRMATION


def test_a_report_about_a_parcel_of_another_account_is_not_recorded():
    shipment = ShipmentFactory()
    other = ShipmentFactory()

    result = report(other, "PICKED_UP", 1) and report(shipment, "PICKED_UP", 1)

    assert result.unknown_parcels == []
    assert TrackingEvent.objects.count() == 2


def test_a_webhook_report_stamps_the_shipments_last_webhook_time():
    shipment = ShipmentFactory()

    report(shipment, "PICKED_UP", 1, source=TrackingEvent.Source.WEBHOOK)

    assert Shipment.objects.get(pk=shipment.pk).last_webhook_at is not None


def test_an_event_whose_order_move_fails_is_not_kept_either(monkeypatch):
    shipment = ShipmentFactory()

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("carriers.services.tracking.order_transition", broken)
    with pytest.raises(RuntimeError):
        report(shipment, "PICKED_UP", 1)

    assert not TrackingEvent.objects.exists()  # the carrier's next report (or the poll) brings it again
    assert status_of(shipment) == OrderStatus.CONFIRMED
