from celery import shared_task

from carriers.services.dispatch import dispatch_batch_run, dispatch_batches_sweep
from carriers.services.polling import shipments_poll
from carriers.services.sandbox_walk import sandbox_parcels_walk


@shared_task(name="carriers.shipments_poll")
def shipments_poll_task() -> dict:
    """The minute's poll sweep (celery-beat): what each account did, for the task's result."""
    return {str(poll.account_id): poll.polled for poll in shipments_poll()}


@shared_task(name="carriers.dispatch_batches_sweep")
def dispatch_batches_sweep_task() -> int:
    """Batches whose task was lost, published again (celery-beat, every minute)."""
    return dispatch_batches_sweep()


@shared_task(name="carriers.dispatch_batch_run")
def dispatch_batch_run_task(batch_id: int) -> dict:
    batch = dispatch_batch_run(batch_id)
    return {"created": batch.created_count, "failed": batch.failed_count, "skipped": batch.skipped_count}


@shared_task(name="carriers.sandbox_walk")
def sandbox_walk_task() -> dict:
    result = sandbox_parcels_walk()
    """The sandbox carrier's walk (celery-beat, every 20 s): its parcels' next steps, posted."""
    return {"stepped": len(result.stepped), "posted": result.posted, "failed": result.failed}
