"""Deliveries about one order processed at the same time, on PostgreSQL with real connections."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from orders.models import Order, StoreDelivery
from orders.services.ingest import store_delivery_process
from tests.factories import StoreFactory
from tests.orders.test_store_webhooks import SHOPIFY_SECRET, fixture, with_field

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


def test_a_create_and_an_update_of_one_order_processed_together_make_one_order():
    store = StoreFactory(platform_secret=SHOPIFY_SECRET)
    created = fixture("shopify/orders_create.json")
    updated = with_field(created, updated_at="2024-11-10T12:00:00+01:00", note="updated")
    deliveries = [
        StoreDelivery.objects.create(
            store=store, platform="shopify", topic=topic, idempotency_key=topic, headers={}, body=body
        )
        for topic, body in (("orders/create", created), ("orders/updated", updated))
    ]

    run_side_by_side(*(lambda d=d: store_delivery_process(d.pk) for d in deliveries))

    order = Order.objects.get(store=store)
    assert order.notes == "updated"
    assert order.events.filter(type="placed").count() == 1
    # Whichever came second either updated the order or, older than what the first applied, skipped.
    assert set(StoreDelivery.objects.values_list("status", flat=True)) <= {"processed", "skipped"}


def test_one_delivery_processed_by_two_workers_at_once_is_processed_once():
    store = StoreFactory(platform_secret=SHOPIFY_SECRET)
    delivery = StoreDelivery.objects.create(
        store=store,
        platform="shopify",
        topic="orders/create",
        idempotency_key="k",
        headers={},
        body=fixture("shopify/orders_create.json"),
    )

    run_side_by_side(lambda: store_delivery_process(delivery.pk), lambda: store_delivery_process(delivery.pk))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("processed", 1)
    assert Order.objects.filter(store=store).count() == 1


def test_a_failed_delivery_due_again_taken_by_two_workers_at_once_is_processed_once():
    store = StoreFactory(platform_secret=SHOPIFY_SECRET)
    delivery = StoreDelivery.objects.create(
        store=store,
        platform="shopify",
        topic="orders/create",
        idempotency_key="k",
        headers={},
        body=fixture("shopify/orders_create.json"),
        status=StoreDelivery.Status.RETRYING,
        attempts=1,
        next_attempt_at=timezone.now(),
    )

    run_side_by_side(lambda: store_delivery_process(delivery.pk), lambda: store_delivery_process(delivery.pk))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("processed", 2)
    assert Order.objects.filter(store=store).count() == 1
