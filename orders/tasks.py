from celery import shared_task

from orders.services.inbox import store_delivery_sweep
from orders.services.ingest import store_delivery_process


@shared_task(name="orders.store_delivery_process")
def store_delivery_process_task(delivery_id: int) -> str | None:
    delivery = store_delivery_process(delivery_id)
    return delivery.status if delivery else None


@shared_task(name="orders.store_delivery_sweep")
def store_delivery_sweep_task() -> int:
    return store_delivery_sweep()
