from celery import shared_task

from messaging.sandbox_tasks import sandbox_receipt_task, sandbox_reply_post_task  # noqa: F401 - registers them
from messaging.services.dispatch import message_send, outbox_drain
from messaging.services.sweep import outbox_sweep


@shared_task(name="messaging.message_send")
def message_send_task(message_id: int) -> None:
    message_send(message_id)


@shared_task(name="messaging.outbox_drain")
def outbox_drain_task() -> dict:
    return vars(outbox_drain())


@shared_task(name="messaging.outbox_sweep")
def outbox_sweep_task() -> dict:
    return vars(outbox_sweep())
