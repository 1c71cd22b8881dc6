from celery import shared_task

from carriers.services.dispatch import dispatch_batch_run


@shared_task(name="carriers.dispatch_batch_run")
def dispatch_batch_run_task(batch_id: int) -> dict:
    batch = dispatch_batch_run(batch_id)
    return {"created": batch.created_count, "failed": batch.failed_count, "skipped": batch.skipped_count}
