from celery import shared_task

from automations.services.engine import rules_run_for_event
from automations.services.sweep import timers_sweep
from automations.services.team_alerts import team_alerts_drain, team_alerts_due, team_alerts_wake


@shared_task(name="automations.rules_run")
def rules_run_task(order_id: int, trigger: str, key: str, status_version: int | None, match: dict) -> int:
    return len(rules_run_for_event(order_id, trigger, key=key, status_version=status_version, **match))


@shared_task(name="automations.timers_sweep")
def timers_sweep_task() -> dict:
    run = timers_sweep()
    if team_alerts_due():  # retries now due, and wake-ups that were lost
        team_alerts_wake()
    return {"fired": run.fired, "skipped": run.skipped, "errors": run.errors}


@shared_task(name="automations.team_alerts_drain")
def team_alerts_drain_task() -> dict:
    return team_alerts_drain()
