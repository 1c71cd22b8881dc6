"""The poll sweep against a loopback Yalidine: due parcels in batches, within the account's
budget, paused on 429, settled and silent parcels left alone."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from carriers.models import CarrierAccount, Shipment, TrackingEvent
from carriers.services.polling import (
    CLAIM_LEASE,
    _shipments_claim,
    account_poll,
    regular_interval,
    shipments_poll,
)
from carriers.tasks import shipments_poll_task
from orders.transitions import OrderStatus
from tests.factories import CarrierAccountFactory, ShipmentFactory
from tests.fakes.carrier_yalidine import FakeYalidine

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake():
    with FakeYalidine() as server:
        yield server


@pytest.fixture
def account(fake, monkeypatch):
    for name, value in fake.credentials.items():
        monkeypatch.setenv(f"LIVRA_YAL_{name}", value)
    monkeypatch.setenv("LIVRA_YAL_BASE_URL", fake.api_url)
    return CarrierAccountFactory(carrier="yalidine", env_prefix="LIVRA_YAL")


def parcels(fake, account, count: int, **fields) -> list[Shipment]:
    """``count`` parcels at the fake and their shipments, due for a poll now (one order's parcels:
    what is measured here is the sweep, and orders are slow to make)."""
    fields.setdefault("next_poll_at", timezone.now() - timedelta(minutes=1))
    first = ShipmentFactory(account=account, tracking_number="yal-P00000", **fields)
    rest = Shipment.objects.bulk_create(
        Shipment(
            order=first.order,
            account=account,
            carrier=account.carrier,
            tracking_number=f"yal-P{number:05d}",
            cod_amount=first.cod_amount,
            create_status=Shipment.CreateStatus.CREATED,
            source="carrier",
            **fields,
        )
        for number in range(1, count)
    )
    shipments = [first, *rest]
    for shipment in shipments:
        fake.parcels[shipment.tracking_number] = {"tracking": shipment.tracking_number}
    return shipments


def history_calls(fake) -> int:
    return len(fake.calls("GET", "/histories"))


def no_sleep(seconds):
    pass


def test_due_parcels_are_asked_about_in_the_carriers_batch_size_and_their_news_is_kept(fake, account):
    shipments = parcels(fake, account, 60)
    fake.push_status("yal-P00003", "Sorti en livraison")

    result = account_poll(account, sleep=no_sleep)

    assert (result.polled, result.requests, result.events) == (60, 2, 1)  # batches of 50
    assert history_calls(fake) == 2
    shipment = Shipment.objects.get(pk=shipments[3].pk)
    assert shipment.order.status == OrderStatus.OUT_FOR_DELIVERY
    assert TrackingEvent.objects.get().source == TrackingEvent.Source.POLL
    assert shipment.last_polled_at is not None


def test_a_second_sweep_right_after_asks_nothing(fake, account):
    parcels(fake, account, 3)
    account_poll(account, sleep=no_sleep)

    again = account_poll(account, sleep=no_sleep)

    assert again.polled == 0
    assert history_calls(fake) == 1


def test_an_out_for_delivery_parcel_is_polled_again_sooner_than_one_in_transit(fake, account):
    urgent, calm = parcels(fake, account, 2)
    fake.push_status(urgent.tracking_number, "Sorti en livraison")
    fake.push_status(calm.tracking_number, "En localisation")

    account_poll(account, sleep=no_sleep)

    urgent.refresh_from_db()
    calm.refresh_from_db()
    assert urgent.next_poll_at - timezone.now() < timedelta(minutes=31)
    assert calm.next_poll_at - urgent.next_poll_at > timedelta(hours=1)


def test_a_carrier_without_webhooks_is_polled_more_often_than_one_that_pushes():
    assert regular_interval("ozon") == timedelta(hours=2)
    assert regular_interval("yalidine") == timedelta(hours=6)


def test_a_delivered_parcel_is_not_polled_any_more(fake, account):
    (shipment,) = parcels(fake, account, 1)
    fake.push_status(shipment.tracking_number, "Livré")

    account_poll(account, sleep=no_sleep)

    shipment.refresh_from_db()
    assert (shipment.state, shipment.next_poll_at) == ("delivered", None)


def test_a_sweep_spends_no_more_requests_than_the_accounts_budget(fake, account):
    parcels(fake, account, 120)
    CarrierAccount.objects.filter(pk=account.pk).update(poll_tokens=1.5, poll_refilled_at=timezone.now())
    account.refresh_from_db()

    result = account_poll(account, sleep=no_sleep)

    assert (result.requests, result.polled) == (1, 50)
    assert Shipment.objects.filter(last_polled_at__isnull=True).count() == 70
    account.refresh_from_db()
    assert account.poll_tokens == pytest.approx(0.5, abs=0.01)


def test_the_budget_refills_at_the_carriers_hourly_pace(fake, account):
    parcels(fake, account, 150)
    CarrierAccount.objects.filter(pk=account.pk).update(poll_tokens=0, poll_refilled_at=timezone.now())
    account.refresh_from_db()

    with time_machine.travel(timezone.now() + timedelta(seconds=8), tick=False):
        result = account_poll(account, sleep=no_sleep)  # 8 s at 1,000/h: 2.2 requests

    assert result.requests == 2


def test_requests_within_a_sweep_are_spaced_by_yalidines_per_second_limit(fake, account):
    parcels(fake, account, 120)
    pauses = []

    account_poll(account, sleep=pauses.append)

    assert pauses == [0.2, 0.2]  # three batches, 5 requests a second at most


def test_a_429_pauses_the_account_for_the_carriers_retry_after_and_keeps_the_parcels_due(fake, account):
    shipments = parcels(fake, account, 3)
    fake.fail_next(429, headers={"Retry-After": "300"})

    result = account_poll(account, sleep=no_sleep)

    account.refresh_from_db()
    assert account.poll_paused_until - timezone.now() > timedelta(minutes=4)
    assert "429" in account.poll_error or "retryable" in account.poll_error
    assert result.polled == 0
    assert {s.next_poll_at for s in Shipment.objects.filter(pk__in=[s.pk for s in shipments])} == {
        account.poll_paused_until
    }
    assert shipments_poll() == [] or all(poll.account_id != account.pk for poll in shipments_poll())


def test_polling_resumes_after_the_pause_and_forgets_the_failures(fake, account):
    parcels(fake, account, 3)
    fake.fail_next(429, headers={"Retry-After": "60"})
    account_poll(account, sleep=no_sleep)

    with time_machine.travel(timezone.now() + timedelta(minutes=3), tick=False):
        account.refresh_from_db()
        result = account_poll(account, sleep=no_sleep)

    assert result.polled == 3
    account.refresh_from_db()
    assert (account.poll_failures, account.poll_error) == (0, "")


def test_each_failure_in_a_row_doubles_the_pause(fake, account):
    parcels(fake, account, 1)
    pauses = []
    for minutes_later in (0, 10):
        with time_machine.travel(timezone.now() + timedelta(minutes=minutes_later), tick=False):
            fake.fail_next(503)
            account.refresh_from_db()
            account_poll(account, sleep=no_sleep)
            account.refresh_from_db()
            pauses.append(round((account.poll_paused_until - timezone.now()).total_seconds()))

    assert pauses == [60, 120]


def test_a_parcel_without_news_for_the_retirement_age_is_retired(fake, account, settings):
    settings.LIVRA_CARRIER_POLL_RETIRE_DAYS = 30
    (old,) = parcels(fake, account, 1)
    Shipment.objects.filter(pk=old.pk).update(last_event_at=timezone.now() - timedelta(days=31))

    result = account_poll(account, sleep=no_sleep)

    old.refresh_from_db()
    assert (result.retired, result.polled) == (1, 0)
    assert old.next_poll_at is None and old.poll_retired_at is not None


def test_two_sweeps_never_claim_the_same_parcel(fake, account):
    parcels(fake, account, 5)
    now = timezone.now()

    first = _shipments_claim(account, 3, now)
    second = _shipments_claim(account, 10, now)

    assert len(first) == 3 and len(second) == 2
    assert not {pk for pk, _ in first} & {pk for pk, _ in second}
    assert Shipment.objects.filter(next_poll_at=now + CLAIM_LEASE).count() == 5


def test_a_paused_or_disabled_account_is_left_out_of_the_sweep(fake, account):
    parcels(fake, account, 2)
    CarrierAccount.objects.filter(pk=account.pk).update(enabled=False)

    assert shipments_poll() == []


def test_the_poll_sweep_runs_every_minute_through_celery_beat():
    task = PeriodicTask.objects.get(name="carriers: poll shipments")

    assert task.task == shipments_poll_task.name == "carriers.shipments_poll"
    assert (task.interval.every, task.interval.period) == (60, "seconds")
