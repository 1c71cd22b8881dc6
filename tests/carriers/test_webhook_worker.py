"""A carrier's push through the real seam: PostgreSQL commit, Redis, a Celery worker process."""

import pytest
from django.urls import reverse

from carriers.models import TrackingEvent
from orders.models import StoreDelivery
from orders.transitions import OrderStatus
from tests.carriers.test_webhook_endpoint import SECRET, sandbox_push
from tests.celery_worker import wait_for
from tests.factories import ShipmentFactory

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch):
    monkeypatch.setenv("LIVRA_SBX_WEBHOOK_SECRET", SECRET)


def test_a_carrier_push_is_answered_at_once_and_applied_by_the_worker(client, celery_worker):
    shipment = ShipmentFactory()
    body, headers = sandbox_push(shipment, "OUT_FOR_DELIVERY")
    url = reverse("carriers:carrier-webhook", args=["sandbox", shipment.account.pk])

    response = client.post(url, data=body, content_type="application/json", headers=headers)

    assert response.status_code == 200
    delivery = wait_for(
        lambda: (
            StoreDelivery.objects.exclude(status="received").filter(pk=response.json()["delivery"]).first()
        ),
        what="the worker to apply the carrier's push",
    )
    assert delivery.status == StoreDelivery.Status.PROCESSED
    assert TrackingEvent.objects.get(shipment=shipment).applied
    shipment.order.refresh_from_db()
    assert shipment.order.status == OrderStatus.OUT_FOR_DELIVERY
    assert len(celery_worker.tasks_received("orders.store_inbox_drain")) == 1
