from celery import shared_task

from carriers.services.polling import shipments_poll


@shared_task(name="carriers.shipments_poll")
def shipments_poll_task() -> dict:
    """The minute's poll sweep (celery-beat): what each account did, for the task's result."""
    return {str(poll.account_id): poll.polled for poll in shipments_poll()}
