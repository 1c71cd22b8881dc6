"""Yalidine storms while the poll sweep runs: the account waits out each pause without sending a
request, every parcel's news is kept once, and polling resumes when the storm ends.

The loopback Yalidine refuses four calls in five with a 429 (``Retry-After: 300``) for half an
hour. The beat's sweep (``shipments_poll``, what ``carriers.shipments_poll`` runs each minute) is
called here once a minute of travelled time (time_machine: the fake's clock travels too), then once
more when the parcels are due again, six hours on. The behaviour under test is the sweep's budget,
claim and pause logic against the real HTTP fake, so it runs in this process; no worker is needed.
Each sweep's requests are counted at the fake.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from carriers.models import Shipment, TrackingEvent
from carriers.services.polling import regular_interval, shipments_poll
from tests.factories import CarrierAccountFactory, ShipmentFactory
from tests.fakes.carrier_yalidine import FakeYalidine
from tests.fakes.server import FakeRequest

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PREFIX = "LIVRA_FAULT_YAL"
PARCELS = 200  # four histories calls of 50
STORM_MINUTES = 30
RETRY_AFTER = 300  # seconds, in each of the storm's 429s
SWEEP_MINUTES = 45  # once a minute, as beat runs it: the storm, its pauses, and the recovery


@dataclass
class Sweep:
    at: datetime
    paused_until: datetime | None  # the pause in force when the sweep began
    sent: list[FakeRequest]
    paused_after: datetime | None


@pytest.fixture
def yalidine(monkeypatch):
    with FakeYalidine() as fake:
        for name, value in fake.credentials.items():
            monkeypatch.setenv(f"{PREFIX}_{name}", value)
        monkeypatch.setenv(f"{PREFIX}_BASE_URL", fake.api_url)
        yield fake


@pytest.fixture
def account(yalidine):
    return CarrierAccountFactory(carrier="yalidine", name="Yalidine", env_prefix=PREFIX)


def due_parcels_with_news(yalidine, account, now) -> list[Shipment]:
    """``PARCELS`` parcels due for a poll, each with one new status at the fake (one order's
    parcels: what is measured is the sweep, and orders are slow to make)."""
    first = ShipmentFactory(account=account, tracking_number="yal-S00000", next_poll_at=now)
    rest = Shipment.objects.bulk_create(
        Shipment(
            order=first.order,
            account=account,
            carrier=account.carrier,
            tracking_number=f"yal-S{number:05d}",
            cod_amount=first.cod_amount,
            create_status=Shipment.CreateStatus.CREATED,
            source="carrier",
            next_poll_at=now,
        )
        for number in range(1, PARCELS)
    )
    shipments = [first, *rest]
    for shipment in shipments:
        yalidine.parcels[shipment.tracking_number] = {"tracking": shipment.tracking_number}
        yalidine.push_status(shipment.tracking_number, "Centre")
    return shipments


def sweep_at(at: datetime, yalidine, account) -> Sweep:
    """The beat's sweep at ``at``, and what reached the fake meanwhile."""
    with time_machine.travel(at, tick=False):
        account.refresh_from_db()
        paused_until = account.poll_paused_until
        before = len(yalidine.requests)
        shipments_poll()
        sent = yalidine.requests[before:]
        account.refresh_from_db()
    return Sweep(at, paused_until, sent, account.poll_paused_until)


def asked_about(requests: list[FakeRequest]) -> Counter:
    return Counter(tracking for request in requests for tracking in request.query["tracking"][0].split(","))


def test_a_storm_of_429s_pauses_polling_without_a_request_and_every_parcels_news_is_kept_once(
    yalidine, account
):
    # given due parcels, each with news at the carrier, and a carrier that storms from the next call
    start = timezone.now().replace(microsecond=0)
    shipments = due_parcels_with_news(yalidine, account, start)
    yalidine.storm(seconds=STORM_MINUTES * 60, retry_after=RETRY_AFTER)

    # when the sweep runs every minute through the storm and after it
    sweeps = [sweep_at(start + timedelta(minutes=m), yalidine, account) for m in range(SWEEP_MINUTES)]

    # then no sweep sent a request while a pause was in force
    paused = [s for s in sweeps if s.paused_until and s.at < s.paused_until]
    assert [len(s.sent) for s in paused] == [0] * len(paused)
    # and a sweep that got a 429 stopped there: the refused call was its last
    refused = {id(request) for request in yalidine.throttled}
    throttled = [s for s in sweeps if any(id(r) in refused for r in s.sent)]
    assert [id(s.sent[-1]) in refused for s in throttled] == [True] * len(throttled)
    # and each pause lasted the Retry-After, or the doubling backoff once that was longer
    pauses = [int((s.paused_after - s.at).total_seconds() // 60) for s in throttled]
    calling = [minute for minute, s in enumerate(sweeps) if s.sent]
    print(
        f"{len(refused)} calls refused; pauses of {pauses} min; {len(paused)} sweeps waited; "
        f"calls at minutes {calling}, {sum(len(s.sent) for s in sweeps)} in all"
    )
    assert pauses == [5, 5, 5, 8, 16]
    assert calling == [0, 5, 10, 15, 23, 39]  # 23: the fifth call let through, the sixth refused
    assert len(paused) == 34

    # and once the storm was over the account resumed: failures back to 0
    account.refresh_from_db()
    assert (account.poll_failures, account.poll_error) == (0, "")
    # and every parcel was asked about in exactly one served call, and its news kept exactly once
    served = [r for s in sweeps for r in s.sent if id(r) not in refused]
    assert asked_about(served) == Counter({s.tracking_number: 1 for s in shipments})
    events = TrackingEvent.objects.filter(shipment__in=shipments)
    assert Counter(events.values_list("shipment_id", flat=True)) == Counter({s.pk: 1 for s in shipments})

    # and when the parcels are due again, the carrier's repeated history adds nothing
    again = sweep_at(sweeps[-1].at + regular_interval("yalidine") + timedelta(minutes=1), yalidine, account)
    assert asked_about(again.sent) == Counter({s.tracking_number: 1 for s in shipments})
    assert Counter(events.values_list("shipment_id", flat=True)) == Counter({s.pk: 1 for s in shipments})
