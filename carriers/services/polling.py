"""Polling carriers for news: one sweep a minute (celery-beat), within each carrier's rate limit.

Every shipment at a carrier carries ``next_poll_at``; the sweep takes each account's due parcels,
oldest due first, through an index that holds only unsettled parcels, so its cost follows what is
due, not the table. Parcels are claimed by pushing their ``next_poll_at`` a lease ahead in the same
statement that reads them (``FOR UPDATE SKIP LOCKED``): two sweeps never poll one parcel, and a
sweep that dies leaves them due again when the lease ends.

The account's budget is a token bucket of requests refilled at the adapter's
``requests_per_second`` (Sendit 1,000/h, Yalidine's hourly quota), holding at most a minute's worth
plus one batch; requests within a sweep are spaced by ``burst_per_second`` where a carrier documents
one (Yalidine 5/s). A 429, an outage or a refusal pauses the account, a minute, then doubling up to
an hour (or the carrier's ``Retry-After`` when longer); the first good answer resets the pause.

How often a parcel is asked about depends on where it is: out for delivery or failed soon (the
customer is waiting, a return may start), otherwise every ``LIVRA_CARRIER_POLL_MINUTES``; at a
carrier that pushes webhooks only as a safety net, every ``LIVRA_CARRIER_POLL_SAFETY_HOURS``.
Settled parcels (delivered, returned, cancelled, lost) are not polled; parcels with no news for
``LIVRA_CARRIER_POLL_RETIRE_DAYS`` are retired (``poll_retired_at``) and left to a person.
"""

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from carriers.adapters import CarrierError, ErrorKind, adapter_class
from carriers.models import CarrierAccount, Shipment, TrackingEvent, TrackingState
from carriers.services.accounts import carrier_account_adapter
from carriers.services.tracking import tracking_updates_record

logger = logging.getLogger(__name__)

T = TrackingState
SETTLED_STATES = (T.DELIVERED, T.RETURNED, T.CANCELLED, T.LOST)
URGENT_STATES = (T.OUT_FOR_DELIVERY, T.DELIVERY_FAILED, T.AVAILABLE_FOR_PICKUP)
# How long claimed parcels stay out of other sweeps' reach: longer than a sweep takes.
CLAIM_LEASE = timedelta(minutes=10)
PAUSE_FIRST = timedelta(minutes=1)
PAUSE_MAX = timedelta(hours=1)
# Most parcels one account's sweep asks about (a sweep a minute: the rest wait for the next).
MAX_PER_SWEEP = 5000


def _minutes(name: str, default: float) -> timedelta:
    return timedelta(minutes=float(getattr(settings, name, default)))


def regular_interval(carrier: str) -> timedelta:
    """How long until a parcel in transit is asked about again at this carrier."""
    if adapter_class(carrier).supports_webhooks:
        return _minutes("LIVRA_CARRIER_POLL_SAFETY_HOURS", 6) * 60
    return _minutes("LIVRA_CARRIER_POLL_MINUTES", 120)


def next_poll_at_expression(carrier: str, now: datetime):
    """``next_poll_at`` for a shipment as its state now says, in SQL (one UPDATE for a batch)."""
    return Case(
        When(state__in=SETTLED_STATES, then=Value(None)),
        When(create_status=Shipment.CreateStatus.CANCELLED, then=Value(None)),
        When(state__in=URGENT_STATES, then=Value(now + _minutes("LIVRA_CARRIER_POLL_URGENT_MINUTES", 30))),
        default=Value(now + regular_interval(carrier)),
    )


def shipments_poll_reschedule(carrier: str, shipment_ids, now: datetime, **also) -> None:
    """Set the next poll of these shipments from their (new) state, plus ``also``'s fields."""
    Shipment.objects.filter(pk__in=list(shipment_ids)).update(
        next_poll_at=next_poll_at_expression(carrier, now), **also
    )


def shipments_poll_now(account: CarrierAccount, tracking_numbers: set[str], now: datetime) -> None:
    """Make these parcels due at the next sweep (a push whose proof is weak names them)."""
    Shipment.objects.filter(
        account=account, tracking_number__in=tracking_numbers, next_poll_at__isnull=False
    ).update(next_poll_at=now)


@dataclass
class AccountPoll:
    account_id: int
    polled: int = 0
    requests: int = 0
    events: int = 0
    retired: int = 0
    paused_until: datetime | None = None
    error: str = ""
    unknown_parcels: list = field(default_factory=list)


def shipments_poll(now: datetime | None = None) -> list[AccountPoll]:
    """The minute's sweep: every enabled account polls its due parcels within its budget."""
    now = now or timezone.now()
    accounts = CarrierAccount.objects.filter(enabled=True).exclude(poll_paused_until__gt=now)
    return [account_poll(account, now=now) for account in accounts]


def account_poll(
    account: CarrierAccount,
    *,
    now: datetime | None = None,
    requests_budget: int | None = None,
    sleep=time.sleep,
) -> AccountPoll:
    """Ask the carrier about the account's due parcels, in its batch size and within its budget.

    ``requests_budget`` replaces the token bucket (benchmarks and one-off catch-ups).
    """
    now = now or timezone.now()
    result = AccountPoll(account.pk)
    cls = adapter_class(account.carrier)
    result.retired = shipments_poll_retire(account, now)
    batch_size = cls.track_batch_size
    cost = getattr(cls, "track_requests_per_batch", 1)
    with transaction.atomic():
        locked = CarrierAccount.objects.select_for_update(skip_locked=True).filter(pk=account.pk).first()
        if locked is None:
            return result  # another sweep is claiming for this account right now
        if locked.poll_paused_until and locked.poll_paused_until > now:
            result.paused_until = locked.poll_paused_until
            return result
        tokens = _tokens_available(locked, cls, now) if requests_budget is None else float(requests_budget)
        batches = int(tokens // cost)
        claimed = _shipments_claim(locked, min(batches * batch_size, MAX_PER_SWEEP), now)
        used = math.ceil(len(claimed) / batch_size) * cost
        if requests_budget is None:
            locked.poll_tokens, locked.poll_refilled_at = tokens - used, now
            locked.save(update_fields=["poll_tokens", "poll_refilled_at"])
    if not claimed:
        return result
    adapter = carrier_account_adapter(account)
    spacing = cost / cls.burst_per_second if getattr(cls, "burst_per_second", None) else 0.0
    batches_of = [claimed[start : start + batch_size] for start in range(0, len(claimed), batch_size)]
    for index, batch in enumerate(batches_of):
        if index and spacing:
            sleep(spacing)
        try:
            updates = adapter.track([number for _, number in batch])
        except CarrierError as error:
            _account_pause(account, error, now)
            # What this sweep did not get to is due again when the pause ends.
            rest = [pk for later in batches_of[index:] for pk, _ in later]
            Shipment.objects.filter(pk__in=rest).update(next_poll_at=account.poll_paused_until)
            result.paused_until, result.error = account.poll_paused_until, str(error)[:300]
            return result
        result.requests += cost
        recorded = tracking_updates_record(account, updates, TrackingEvent.Source.POLL)
        result.events += len(recorded.recorded)
        result.unknown_parcels += recorded.unknown_parcels
        result.polled += len(batch)
        polled_at = timezone.now()
        shipments_poll_reschedule(
            account.carrier, [pk for pk, _ in batch], polled_at, last_polled_at=polled_at
        )
    if account.poll_failures or account.poll_error:
        CarrierAccount.objects.filter(pk=account.pk).update(poll_failures=0, poll_error="")
    logger.info(
        "carrier poll account_id=%s parcels=%s requests=%s events=%s",
        account.pk,
        result.polled,
        result.requests,
        result.events,
    )
    return result


def shipments_poll_retire(account: CarrierAccount, now: datetime) -> int:
    """Stop polling the account's due parcels that had no news for the retirement age."""
    cutoff = now - timedelta(days=float(getattr(settings, "LIVRA_CARRIER_POLL_RETIRE_DAYS", 30)))
    retired = (
        Shipment.objects.filter(account=account, next_poll_at__lte=now)
        .annotate(news_at=Coalesce("last_event_at", "created_at"))
        .filter(news_at__lt=cutoff)
        .update(next_poll_at=None, poll_retired_at=now)
    )
    if retired:
        logger.warning("carrier poll retired %s parcels with no news account_id=%s", retired, account.pk)
    return retired


def _tokens_available(account: CarrierAccount, cls, now: datetime) -> float:
    cost = getattr(cls, "track_requests_per_batch", 1)
    capacity = cls.requests_per_second * 60 + cost  # a minute's worth, and always one batch
    if account.poll_tokens is None or account.poll_refilled_at is None:
        return capacity
    elapsed = max(0.0, (now - account.poll_refilled_at).total_seconds())
    return min(capacity, account.poll_tokens + elapsed * cls.requests_per_second)


def _shipments_claim(account: CarrierAccount, limit: int, now: datetime) -> list[tuple[int, str]]:
    """Take up to ``limit`` due parcels of the account, oldest due first: (id, tracking number)."""
    if limit <= 0:
        return []
    claimed = list(
        Shipment.objects.filter(account=account, next_poll_at__lte=now)
        .exclude(tracking_number="")
        .select_for_update(skip_locked=True)
        .order_by("next_poll_at")
        .values_list("pk", "tracking_number")[:limit]
    )
    Shipment.objects.filter(pk__in=[pk for pk, _ in claimed]).update(next_poll_at=now + CLAIM_LEASE)
    return claimed


def _account_pause(account: CarrierAccount, error: CarrierError, now: datetime) -> None:
    failures = account.poll_failures + 1
    pause = min(PAUSE_MAX, PAUSE_FIRST * 2 ** (failures - 1))
    if error.retry_after:
        pause = max(pause, timedelta(seconds=error.retry_after))
    account.poll_failures, account.poll_paused_until = failures, now + pause
    account.poll_error = f"{error.kind}: {error.code} {error.text}".strip()[:300]
    account.save(update_fields=["poll_failures", "poll_paused_until", "poll_error"])
    log = logger.warning if error.kind != ErrorKind.PERMANENT else logger.error
    log(
        "carrier poll paused account_id=%s kind=%s for=%ss",
        account.pk,
        error.kind,
        int(pause.total_seconds()),
    )
