"""Rules' team alerts: queued with the rule's other actions, posted after commit by one drain.

The drain claims the due alerts (``FOR UPDATE SKIP LOCKED``), posts the ones that share a text as
one message listing their orders (a carrier silent about a hundred parcels is one post, not a
hundred) outside any transaction, and records each outcome: sent; queued again with backoff; or
failed, after ``MAX_ATTEMPTS`` or at a refusal that retrying cannot mend. A post whose answer was
lost is posted again: a repeated alert in a team channel is harmless, a lost one is not. Nothing
about the customer goes to the channel: the alert's text, the store, order numbers and links to
the orders in admin.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.urls import reverse
from django.utils import timezone

from automations.models import Rule, TeamAlert
from automations.services.claims import ids_claim
from automations.team_channel import TeamChannelError, team_channel_configured, team_channel_post
from messaging.services.outbox import retry_delay
from orders.models import Order
from orders.wakeups import wakeup_clear, wakeup_request

logger = logging.getLogger(__name__)

TEAM_ALERTS = "automations.team_alerts"
BATCH_SIZE = 200
MAX_LISTED = 20  # orders named in one post; the rest are counted
MAX_ATTEMPTS = 6
SENDING_LEASE = timedelta(minutes=2)


def team_alerts_queue(rule: Rule, orders: list[Order], text: str) -> None:
    """Queue ``text`` for the team channel about each of ``orders`` (in the caller's transaction)."""
    TeamAlert.objects.bulk_create(TeamAlert(order=order, rule=rule, text=text[:500]) for order in orders)
    transaction.on_commit(team_alerts_wake)


def team_alerts_wake(force: bool = False) -> bool:
    """Publish a drain unless one is pending (``force``: anyway); whether it was published."""
    from automations.tasks import team_alerts_drain_task

    return wakeup_request(TEAM_ALERTS, team_alerts_drain_task, force=force)


def team_alerts_due(now=None) -> bool:
    """Alerts waiting for a drain: due retries, and claims a crashed drain left (the beat asks)."""
    return any(rows.exists() for rows in _due(now or timezone.now()))


def _due(now) -> tuple[QuerySet, QuerySet]:
    """Due alerts, and alerts a crashed drain claimed and never finished: each on its own index."""
    queued = TeamAlert.objects.filter(state=TeamAlert.State.QUEUED, next_attempt_at__lte=now)
    abandoned = TeamAlert.objects.filter(state=TeamAlert.State.SENDING, claimed_at__lt=now - SENDING_LEASE)
    return queued.order_by("next_attempt_at", "pk"), abandoned.order_by("claimed_at", "pk")


def team_alerts_drain(batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Post up to ``batch_size`` due alerts; what became of them."""
    wakeup_clear(TEAM_ALERTS)
    now = timezone.now()
    alerts = _claim(now, batch_size)
    outcome = {"claimed": len(alerts), "sent": 0, "retried": 0, "failed": 0, "not_configured": 0}
    if not alerts:
        return outcome
    if not team_channel_configured():
        # Nowhere to post: the alerts stay on the orders' timelines and in admin.
        _finish(alerts, state=TeamAlert.State.NOT_CONFIGURED)
        outcome["not_configured"] = len(alerts)
        return outcome
    by_text: dict[str, list[TeamAlert]] = {}
    for alert in alerts:
        by_text.setdefault(alert.text, []).append(alert)
    for text, group in by_text.items():
        try:
            team_channel_post(_post_text(text, group))
        except TeamChannelError as exc:
            outcome["retried" if _record_failure(group, exc) else "failed"] += len(group)
            logger.warning("team alert post failed alerts=%s reason=%s", len(group), exc)
        else:
            _finish(group, state=TeamAlert.State.SENT, sent_at=timezone.now())
            outcome["sent"] += len(group)
    if len(alerts) == batch_size:
        team_alerts_wake(force=True)  # more may be due
    return outcome


def _claim(now, batch_size: int) -> list[TeamAlert]:
    with transaction.atomic():
        ids = ids_claim(_due(now), batch_size)
        TeamAlert.objects.filter(pk__in=ids).update(
            state=TeamAlert.State.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    return list(TeamAlert.objects.filter(pk__in=ids).select_related("order__store").order_by("pk"))


def _post_text(text: str, alerts: list[TeamAlert]) -> str:
    lines = [f"{text}: {len(alerts)} order{'s' if len(alerts) > 1 else ''}"]
    for alert in alerts[:MAX_LISTED]:
        order = alert.order
        link = settings.LIVRA_PUBLIC_URL + reverse("admin:orders_order_change", args=[order.pk])
        lines.append(f"• {order.store.name} {order.number} {link}")
    if len(alerts) > MAX_LISTED:
        lines.append(f"… and {len(alerts) - MAX_LISTED} more")
    return "\n".join(lines)


def _record_failure(alerts: list[TeamAlert], error: TeamChannelError) -> bool:
    """Queue the alerts again with backoff, or fail them; whether they will be tried again."""
    attempts = max(alert.attempts for alert in alerts)  # the claim counted this one
    if not error.retryable or attempts >= MAX_ATTEMPTS:
        _finish(alerts, state=TeamAlert.State.FAILED, last_error=str(error)[:500])
        return False
    delay = retry_delay(attempts, error.retry_after)  # the outbox's backoff, jitter and Retry-After
    _finish(
        alerts,
        state=TeamAlert.State.QUEUED,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        last_error=str(error)[:500],
    )
    return True


def _finish(alerts: list[TeamAlert], **values) -> None:
    TeamAlert.objects.filter(pk__in=[alert.pk for alert in alerts]).update(claimed_at=None, **values)
