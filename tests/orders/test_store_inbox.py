"""The store inbox between the webhook and processing: coalesced drains, and stores read cheaply."""

import pytest
from django.urls import reverse

from orders.models import Order, StoreDelivery
from orders.services.inbox import store_delivery_receive, store_inbox_drain
from orders.services.stores import webhook_secret_rotate
from tests.factories import StoreFactory
from tests.orders.test_store_webhooks import (
    SHOPIFY_SECRET,
    fixture,
    shopify_headers,
    with_field,
    woocommerce_headers,
)


def receive(store, body: bytes, key: str) -> int:
    delivery_id, _ = store_delivery_receive(
        store, "shopify", topic="orders/create", idempotency_key=key, headers={}, body=body
    )
    return delivery_id


def shopify_order(number: int) -> bytes:
    return with_field(fixture("shopify/orders_create.json"), id=number, name=f"#{number}")


@pytest.mark.django_db
def test_a_drain_processes_the_waiting_deliveries_oldest_first_and_wakes_another_for_the_rest(
    django_capture_on_commit_callbacks,
):
    store = StoreFactory(platform_secret=SHOPIFY_SECRET)
    with django_capture_on_commit_callbacks(execute=False):  # their wakeups are not run
        ids = [receive(store, shopify_order(1000 + n), key=str(n)) for n in range(5)]

    with django_capture_on_commit_callbacks(execute=True):
        processed = store_inbox_drain(batch_size=3)  # the drain it wakes runs inline (eager)

    assert processed == 3
    assert set(StoreDelivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"processed"}
    assert Order.objects.filter(store=store).count() == 5


@pytest.mark.django_db
def test_a_webhook_signed_with_a_secret_rotated_a_moment_ago_is_accepted(client):
    store = StoreFactory()
    url = reverse("orders:store-webhook", args=["woocommerce", store.slug])
    body = fixture("woocommerce/order_created_cod.json")
    client.post(url, data=body, content_type="application/json", headers=woocommerce_headers(body, "x"))

    secret = webhook_secret_rotate(store)  # the store was just read (and kept) by the webhook

    response = client.post(
        url, data=body, content_type="application/json", headers=woocommerce_headers(body, secret)
    )
    assert response.status_code == 200


@pytest.mark.postgres
@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_deliveries_publishes_one_drain_task_while_it_is_pending(client, celery_idle_queue):
    store = StoreFactory(platform_secret=SHOPIFY_SECRET, shop_domain="atlas-souk.myshopify.com")
    url = reverse("orders:store-webhook", args=["shopify", store.slug])

    for n in range(10):
        body = shopify_order(2000 + n)
        client.post(url, data=body, content_type="application/json", headers=shopify_headers(body))

    assert StoreDelivery.objects.filter(status="received").count() == 10
    assert celery_idle_queue.depth() == 1
