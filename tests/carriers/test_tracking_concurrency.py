"""One carrier event reported twice at the same moment (webhook and poll racing), on PostgreSQL."""

import threading

import pytest
from django.db import connection

from carriers.adapters import TrackingUpdate
from carriers.models import TrackingEvent
from carriers.services import tracking_updates_record
from orders.transitions import OrderStatus
from tests.carriers.helpers import at
from tests.factories import ShipmentFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_side_by_side(*jobs):
    start = threading.Barrier(len(jobs))
    errors = []

    def run(job):
        try:
            start.wait()
            job()
        except Exception as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


def test_two_identical_events_at_once_make_one_event_and_one_order_move():
    shipment = ShipmentFactory()
    update = TrackingUpdate(shipment.tracking_number, "PICKED_UP", occurred_at=at(1), event_id="race-1")

    run_side_by_side(
        lambda: tracking_updates_record(shipment.account, [update], TrackingEvent.Source.WEBHOOK),
        lambda: tracking_updates_record(shipment.account, [update], TrackingEvent.Source.POLL),
    )

    assert TrackingEvent.objects.filter(shipment=shipment).count() == 1
    shipment.order.refresh_from_db()
    assert shipment.order.status == OrderStatus.SHIPPED
    assert shipment.order.events.filter(type="shipped").count() == 1


def test_two_events_of_one_parcel_at_once_both_apply_in_order():
    shipment = ShipmentFactory()
    picked = TrackingUpdate(shipment.tracking_number, "PICKED_UP", occurred_at=at(1), event_id="p-1")
    moving = TrackingUpdate(shipment.tracking_number, "OUT_FOR_DELIVERY", occurred_at=at(20), event_id="p-2")

    run_side_by_side(
        lambda: tracking_updates_record(shipment.account, [picked], TrackingEvent.Source.WEBHOOK),
        lambda: tracking_updates_record(shipment.account, [moving], TrackingEvent.Source.WEBHOOK),
    )

    shipment.order.refresh_from_db()
    assert shipment.order.status == OrderStatus.OUT_FOR_DELIVERY
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 2
