from celery import shared_task

from orders.services.inbox import store_delivery_sweep, store_inbox_drain


@shared_task(name="orders.store_inbox_drain")
def store_inbox_drain_task() -> int:
    return store_inbox_drain()


@shared_task(name="orders.store_delivery_sweep")
def store_delivery_sweep_task() -> int:
    return store_delivery_sweep()
