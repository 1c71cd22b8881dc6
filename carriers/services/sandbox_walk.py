"""The sandbox carrier's walk: its parcels live a realistic life and Livra hears of it by webhook.

Each walk (celery-beat runs ``carriers.sandbox_walk`` every 20 s) moves every parcel whose step is
due one step further: picked up, in transit through its hubs, out for delivery, then delivered, or
a failed attempt (customer unreachable, postponed) and another attempt, or refused at the door,
or returned after too many failures, rarely lost. A parcel's life is drawn from its account's
``SandboxWalkSettings`` (rates set in admin) when it is first picked up.

Then the walk posts what the parcels went through to Livra's real carrier webhook
(``/webhooks/carriers/sandbox/<account id>/``), signed with the account's webhook secret as the
sandbox's adapter verifies it, over HTTP, with no database transaction open. An event is marked
posted only once the webhook answered 2xx; until then every walk posts it again (Livra
deduplicates by its event id), so none is lost while the web server is down.
"""

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from carriers.adapters import webhook_path
from carriers.adapters.sandbox import CITIES, SIGNATURE_HEADER, SandboxCarrier, sign, update_of
from carriers.models import CarrierAccount, SandboxParcel, SandboxParcelEvent, SandboxWalkSettings
from carriers.services.accounts import carrier_account_adapter

logger = logging.getLogger(__name__)

WALK_BATCH = 200  # parcels stepped per walk (the rest are due at the next one)
POST_BATCH = 100  # events per webhook post
POST_TIMEOUT = 5.0  # seconds: a walk must not hang on a web server that does not answer
HUBS = ["Casablanca", "Marrakech", "Fès", "Tanger", "Agadir"]
FAILED_ATTEMPTS = ["UNREACHABLE", "POSTPONED"]
TEXTS = {  # what the courier's scan says (the carrier's words: kept raw, never shown translated)
    "UNREACHABLE": "Customer did not answer the phone",
    "POSTPONED": "Customer asked for another day",
    "PICKED_UP": "Picked up from the sender",
    "IN_TRANSIT": "On its way",
    "AT_HUB": "Arrived at the hub",
    "OUT_FOR_DELIVERY": "With the courier",
    "DELIVERED": "Delivered, cash collected",
    "REFUSED": "Refused by the customer at the door",
    "RETURNING": "On its way back to the sender",
    "RETURNED": "Returned to the sender",
    "LOST": "Lost in transit",
}


@dataclass
class WalkResult:
    stepped: list[str] = field(default_factory=list)  # raw codes recorded, one per parcel stepped
    posted: int = 0  # events Livra's webhook accepted
    failed: int = 0  # events whose post failed: posted again at the next walk


def sandbox_walk_settings_for(account: CarrierAccount) -> SandboxWalkSettings:
    """The account's walk settings, created with the defaults the first time they are needed."""
    walk_settings, _ = SandboxWalkSettings.objects.get_or_create(account=account)
    return walk_settings


def sandbox_walk_plan(
    walk_settings: SandboxWalkSettings, rng: random.Random, destination: str = "", origin: str = ""
) -> list:
    """A parcel's life after ``CREATED``, drawn from the rates: ``[[raw code, text, location]]``."""
    steps = [("PICKED_UP", origin)]
    for hop in range(walk_settings.transit_hops):  # on the road, then a hub, then the road…
        steps.append(("IN_TRANSIT", "") if hop % 2 == 0 else ("AT_HUB", rng.choice(HUBS)))
    draw = rng.uniform(0, 100)
    lost = walk_settings.lost_share
    refused = lost + walk_settings.refused_share
    failed_first = refused + walk_settings.failed_attempt_share
    if draw < lost:
        steps.append(("LOST", ""))
        return [[code, TEXTS.get(code, ""), where] for code, where in steps]
    attempt = [("OUT_FOR_DELIVERY", destination)]
    if draw < refused:
        steps += [*attempt, ("REFUSED", destination), ("RETURNING", ""), ("RETURNED", "")]
    elif draw < failed_first:
        returned = walk_settings.max_attempts < 2 or rng.uniform(0, 100) < (
            walk_settings.returned_after_failures_share
        )
        failures = walk_settings.max_attempts if returned else rng.randint(1, walk_settings.max_attempts - 1)
        for _ in range(failures):
            steps += [*attempt, (rng.choice(FAILED_ATTEMPTS), destination)]
        if returned:
            steps += [("RETURNING", ""), ("RETURNED", "")]
        else:
            steps += [*attempt, ("DELIVERED", destination)]
    else:
        steps += [*attempt, ("DELIVERED", destination)]
    return [[code, TEXTS.get(code, ""), where] for code, where in steps]


def sandbox_parcels_walk(now: datetime | None = None, rng: random.Random | None = None) -> WalkResult:
    """One walk: every due parcel one step further, then what happened posted to Livra's webhook."""
    now = now or timezone.now()
    rng = rng or random.Random()  # noqa: S311 - a parcel's fate, not a secret
    result = WalkResult(stepped=sandbox_parcels_step(now, rng))
    result.posted, result.failed = sandbox_events_post(now)
    return result


def sandbox_parcels_step(now: datetime, rng: random.Random) -> list[str]:
    """Due parcels (not cancelled, walk not over) one step each; the raw codes recorded."""
    recorded = []
    with transaction.atomic():
        due = list(
            SandboxParcel.objects.select_for_update(skip_locked=True)
            .filter(cancelled=False, next_step_at__lte=now)
            .select_related("account")
            .order_by("next_step_at", "id")[:WALK_BATCH]
        )
        settings_by_account: dict[int, SandboxWalkSettings] = {}
        for parcel in due:
            if parcel.account_id not in settings_by_account:
                settings_by_account[parcel.account_id] = sandbox_walk_settings_for(parcel.account)
            walk_settings = settings_by_account[parcel.account_id]
            if parcel.plan is None:
                parcel.plan = sandbox_walk_plan(
                    walk_settings,
                    rng,
                    destination=city_name(parcel.request.get("city", "")),
                    origin=str(parcel.account.pickup_address.get("city", "")),
                )
            if not parcel.plan:
                parcel.next_step_at = None
                parcel.save(update_fields=["plan", "next_step_at"])
                continue
            code, text, where = parcel.plan.pop(0)
            SandboxCarrier(account=parcel.account).record_event(
                parcel.tracking_number, code, text, now, where
            )
            parcel.next_step_at = (
                now + timedelta(minutes=walk_settings.minutes_between_steps) if parcel.plan else None
            )
            parcel.save(update_fields=["plan", "next_step_at"])
            recorded.append(code)
    return recorded


def sandbox_events_post(now: datetime | None = None) -> tuple[int, int]:
    """Post every event Livra's webhook does not have yet, per account, oldest first.

    Answers (accepted, failed). Runs outside any transaction: the HTTP call is not held inside one.
    """
    now = now or timezone.now()
    accepted = failed = 0
    account_ids = (
        SandboxParcelEvent.objects.filter(posted_at__isnull=True)
        .values_list("parcel__account_id", flat=True)
        .distinct()
    )
    for account in CarrierAccount.objects.filter(pk__in=list(account_ids)).order_by("pk"):
        events = list(
            SandboxParcelEvent.objects.filter(posted_at__isnull=True, parcel__account=account)
            .select_related("parcel")
            .order_by("occurred_at", "parcel_id", "sequence")[:POST_BATCH]
        )
        error = sandbox_events_post_to_livra(account, events)
        ids = [event.pk for event in events]
        if error:
            failed += len(events)
            SandboxParcelEvent.objects.filter(pk__in=ids).update(
                post_attempts=F("post_attempts") + 1, post_error=error[:200]
            )
            logger.warning(
                "sandbox carrier webhook post failed account_id=%s events=%s error=%s",
                account.pk,
                len(events),
                error,
            )
        else:
            accepted += len(events)
            SandboxParcelEvent.objects.filter(pk__in=ids).update(
                posted_at=now, post_attempts=F("post_attempts") + 1, post_error=""
            )
    return accepted, failed


def sandbox_events_post_to_livra(account: CarrierAccount, events: list[SandboxParcelEvent]) -> str:
    """One signed post of ``events`` to the account's carrier webhook; '' when accepted, else why not."""
    adapter = carrier_account_adapter(account)
    if not adapter.webhook_secret:
        return f"no webhook secret in {account.webhook_secret_variable}"
    body = adapter.webhook_body([update_of(event, event.parcel) for event in events])
    url = sandbox_webhook_url(account)
    try:
        response = requests.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(adapter.webhook_secret, body),
            },
            timeout=POST_TIMEOUT,
        )
    except requests.RequestException as exc:
        return type(exc).__name__
    if not 200 <= response.status_code < 300:
        return f"HTTP {response.status_code}"
    return ""


def sandbox_webhook_url(account: CarrierAccount) -> str:
    """Livra's carrier webhook for ``account``, on the web server the walk posts to."""
    path = reverse("carriers:carrier-webhook", args=[webhook_path(SandboxCarrier), account.pk])
    return settings.LIVRA_SANDBOX_CARRIER_WEBHOOK_BASE.rstrip("/") + path


def city_name(city: str) -> str:
    """The sandbox's city id → its name (a name stays as it is)."""
    return next((name for id_, name, _ in CITIES if id_ == city), city)
