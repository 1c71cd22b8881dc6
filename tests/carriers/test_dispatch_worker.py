"""Dispatch through the real seam: the admin's action commits, a Celery worker process runs the batch.

The sandbox carrier keeps its parcels in the worker's memory: this test reads the database only.
"""

import pytest
from django.urls import reverse

from carriers.models import DispatchBatch, Shipment
from orders.models import Order
from orders.transitions import OrderStatus
from tests.celery_worker import wait_for
from tests.factories import CarrierAccountFactory, UserFactory, grant, order_in_status

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def finished(batch_id: int) -> DispatchBatch | None:
    batch = DispatchBatch.objects.get(pk=batch_id)
    return batch if batch.status == DispatchBatch.Status.DONE else None


def test_the_worker_creates_the_batchs_parcels_after_the_action_commits(client, celery_worker):
    account = CarrierAccountFactory()
    user = grant(UserFactory(stores=[account.store]), "orders.view_order", "carriers.add_dispatchbatch")
    client.force_login(user)
    orders = [order_in_status(OrderStatus.CONFIRMED, store=account.store) for _ in range(3)]
    [no_address] = [order_in_status(OrderStatus.CONFIRMED, store=account.store, shipping_address="")]

    response = client.post(
        reverse("admin:orders_order_changelist"),
        {
            "action": f"dispatch_to_account_{account.pk}",
            "_selected_action": [order.pk for order in [*orders, no_address]],
        },
    )

    assert response.status_code == 302
    batch = wait_for(lambda: finished(DispatchBatch.objects.get().pk), what="the worker to run the batch")
    assert (batch.total, batch.created_count, batch.failed_count) == (4, 3, 1)
    assert batch.label_pdf is not None and bytes(batch.label_pdf).startswith(b"%PDF")
    assert set(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True)) == {
        OrderStatus.SHIPPED
    }
    assert Shipment.objects.filter(batch=batch, create_status=Shipment.CreateStatus.CREATED).count() == 3
    assert len(celery_worker.tasks_received("carriers.dispatch_batch_run")) == 1
