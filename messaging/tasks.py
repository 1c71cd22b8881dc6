from celery import shared_task

from messaging.services import message_send


@shared_task(name="messaging.message_send")
def message_send_task(message_id: int) -> None:
    message_send(message_id)
