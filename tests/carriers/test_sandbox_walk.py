"""The sandbox carrier's walk: parcels live a realistic life, at the rates set for their account."""

import random
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from carriers.models import SandboxParcel, SandboxWalkSettings
from carriers.services import sandbox_walk_settings_for, shipment_cancel, shipment_create
from carriers.services.sandbox_walk import sandbox_parcels_step, sandbox_walk_plan
from orders.transitions import OrderStatus
from tests.factories import CarrierAccountFactory, order_in_status

pytestmark = pytest.mark.django_db

DELIVERED_FIRST_TIME = ["CREATED", "PICKED_UP", "IN_TRANSIT", "AT_HUB", "OUT_FOR_DELIVERY", "DELIVERED"]


@pytest.fixture
def account():
    return CarrierAccountFactory()


def rates(account, **shares) -> SandboxWalkSettings:
    """The account's walk with these rates (and other settings); every share not named is 0."""
    walk_settings = sandbox_walk_settings_for(account)
    values = {
        "failed_attempt_share": 0,
        "refused_share": 0,
        "returned_after_failures_share": 0,
        "lost_share": 0,
    }
    for name, value in {**values, **shares}.items():
        setattr(walk_settings, name, value)
    walk_settings.save()
    return walk_settings


def parcel_of(account) -> SandboxParcel:
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    return SandboxParcel.objects.get(tracking_number=shipment_create(order, account).tracking_number)


def walk_to_the_end(parcel: SandboxParcel, seed: int = 7) -> list[str]:
    """Every walk until the parcel's is over, each when its step is due; its raw codes."""
    rng = random.Random(seed)
    for _ in range(50):
        parcel.refresh_from_db()
        if parcel.next_step_at is None:
            break
        sandbox_parcels_step(parcel.next_step_at, rng)
    return list(parcel.events.values_list("raw_code", flat=True))


def test_a_parcel_is_picked_up_carried_through_a_hub_and_delivered(account):
    rates(account)

    assert walk_to_the_end(parcel_of(account)) == DELIVERED_FIRST_TIME


def test_a_parcel_refused_at_the_door_goes_back_to_the_sender(account):
    rates(account, refused_share=100)

    assert walk_to_the_end(parcel_of(account))[-4:] == [
        "OUT_FOR_DELIVERY",
        "REFUSED",
        "RETURNING",
        "RETURNED",
    ]


def test_when_every_first_attempt_fails_and_none_is_sent_back_a_later_attempt_delivers(account):
    rates(account, failed_attempt_share=100, returned_after_failures_share=0)

    codes = walk_to_the_end(parcel_of(account))

    assert codes[4] == "OUT_FOR_DELIVERY" and codes[5] in {"UNREACHABLE", "POSTPONED"}
    assert codes[-2:] == ["OUT_FOR_DELIVERY", "DELIVERED"]
    assert "RETURNED" not in codes


def test_when_every_failed_parcel_is_sent_back_it_returns_after_its_last_attempt(account):
    rates(account, failed_attempt_share=100, returned_after_failures_share=100, max_attempts=3)

    codes = walk_to_the_end(parcel_of(account))

    assert codes.count("OUT_FOR_DELIVERY") == 3
    assert sum(code in {"UNREACHABLE", "POSTPONED"} for code in codes) == 3
    assert codes[-2:] == ["RETURNING", "RETURNED"] and "DELIVERED" not in codes


def test_a_lost_parcel_is_lost_in_transit_and_never_delivered(account):
    rates(account, lost_share=100)

    assert walk_to_the_end(parcel_of(account)) == ["CREATED", "PICKED_UP", "IN_TRANSIT", "AT_HUB", "LOST"]


def test_over_many_parcels_the_walk_keeps_to_the_rates():
    walk_settings = SandboxWalkSettings(
        failed_attempt_share=20, refused_share=10, returned_after_failures_share=50, lost_share=5
    )
    rng = random.Random(11)

    endings = Counter()
    for _ in range(4000):
        plan = [code for code, _, _ in sandbox_walk_plan(walk_settings, rng)]
        refused, failed = "REFUSED" in plan, bool({"UNREACHABLE", "POSTPONED"} & set(plan))
        endings["refused" if refused else "failed" if failed else plan[-1]] += 1
        endings["returned after failures"] += failed and plan[-1] == "RETURNED"

    assert endings["LOST"] / 4000 == pytest.approx(0.05, abs=0.015)
    assert endings["refused"] / 4000 == pytest.approx(0.10, abs=0.02)
    assert endings["failed"] / 4000 == pytest.approx(0.20, abs=0.025)
    assert endings["returned after failures"] / endings["failed"] == pytest.approx(0.5, abs=0.06)


def test_the_same_seed_walks_the_same_life():
    walk_settings = SandboxWalkSettings()

    first = [sandbox_walk_plan(walk_settings, random.Random(seed)) for seed in range(30)]
    again = [sandbox_walk_plan(walk_settings, random.Random(seed)) for seed in range(30)]

    assert first == again
    assert len({tuple(code for code, _, _ in plan) for plan in first}) > 1  # not all the same life


def test_a_parcel_moves_one_step_each_time_its_minutes_have_passed(account):
    rates(account, minutes_between_steps=5)
    parcel = parcel_of(account)
    now = timezone.now()
    rng = random.Random(1)

    assert sandbox_parcels_step(now, rng) == []  # created just now: due in 5 minutes
    assert sandbox_parcels_step(now + timedelta(minutes=5), rng) == ["PICKED_UP"]
    assert sandbox_parcels_step(now + timedelta(minutes=9), rng) == []
    assert sandbox_parcels_step(now + timedelta(minutes=10), rng) == ["IN_TRANSIT"]
    parcel.refresh_from_db()
    assert parcel.next_step_at == now + timedelta(minutes=15)


def test_a_cancelled_parcel_does_not_move(account):
    order = order_in_status(OrderStatus.CONFIRMED, store=account.store)
    shipment = shipment_create(order, account)
    shipment_cancel(shipment)

    assert sandbox_parcels_step(timezone.now() + timedelta(days=1), random.Random(1)) == []
    parcel = SandboxParcel.objects.get(tracking_number=shipment.tracking_number)
    assert list(parcel.events.values_list("raw_code", flat=True)) == ["CREATED", "CANCELLED"]


def test_a_parcel_whose_walk_is_over_does_not_move_again(account):
    rates(account)
    parcel = parcel_of(account)
    walk_to_the_end(parcel)

    assert sandbox_parcels_step(timezone.now() + timedelta(days=30), random.Random(1)) == []
    assert parcel.events.count() == len(DELIVERED_FIRST_TIME)
