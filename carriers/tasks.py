from celery import shared_task

from carriers.services.sandbox_walk import sandbox_parcels_walk


# --- the sandbox carrier's walk (celery-beat: every 20 s) ---------------------------------------
@shared_task(name="carriers.sandbox_walk")
def sandbox_walk_task() -> dict:
    result = sandbox_parcels_walk()
    return {"stepped": len(result.stepped), "posted": result.posted, "failed": result.failed}


# --- end of the sandbox carrier's walk ------------------------------------------------------------
