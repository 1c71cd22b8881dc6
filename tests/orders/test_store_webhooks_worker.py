"""A store delivery through the real seam: PostgreSQL commit, Redis, a Celery worker process."""

import pytest
from django.urls import reverse

from orders.models import Order, StoreDelivery
from tests.celery_worker import wait_for
from tests.factories import StoreFactory
from tests.orders.test_store_webhooks import SHOP_DOMAIN, SHOPIFY_SECRET, fixture, shopify_headers

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def processed(delivery_id: int) -> StoreDelivery | None:
    delivery = StoreDelivery.objects.get(pk=delivery_id)
    return delivery if delivery.status != StoreDelivery.Status.RECEIVED else None


def test_a_shopify_delivery_is_answered_at_once_and_processed_by_the_worker(client, celery_worker):
    store = StoreFactory(platform_secret=SHOPIFY_SECRET, shop_domain=SHOP_DOMAIN)
    body = fixture("shopify/orders_create.json")
    url = reverse("orders:store-webhook", args=["shopify", store.slug])

    response = client.post(url, data=body, content_type="application/json", headers=shopify_headers(body))

    assert response.status_code == 200
    delivery = wait_for(
        lambda: processed(response.json()["delivery"]), what="the worker to process the delivery"
    )
    assert delivery.status == "processed"
    order = Order.objects.get(store=store)
    assert (order.status, order.payment_method) == ("awaiting_confirmation", "cod")
    assert len(celery_worker.tasks_received("orders.store_inbox_drain")) == 1
