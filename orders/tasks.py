from celery import shared_task

from orders.services.ingest import store_delivery_process


@shared_task(name="orders.store_delivery_process")
def store_delivery_process_task(delivery_id: int) -> str | None:
    delivery = store_delivery_process(delivery_id)
    return delivery.status if delivery else None
