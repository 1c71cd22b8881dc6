"""Team alerts: a rule's alert is an outbox row written with its other actions, posted after commit
to the team channel (a Slack-compatible incoming webhook, here a loopback fake), grouped by text,
retried with backoff, and never carrying the customer's details."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from automations.models import TeamAlert
from automations.services.sweep import timers_sweep
from automations.services.team_alerts import MAX_ATTEMPTS, MAX_LISTED, team_alerts_drain
from automations.tasks import timers_sweep_task
from orders.transitions import OrderStatus
from tests.factories import order_in_status
from tests.fakes.server import FakeResponse
from tests.fakes.team_chat import FakeTeamChat

pytestmark = pytest.mark.django_db

S = OrderStatus
STALE = timedelta(hours=72, minutes=1)
ALERT = "no carrier news for 72 hours"


@pytest.fixture
def team_chat(settings):
    with FakeTeamChat() as fake:
        settings.TEAM_CHANNEL_WEBHOOK_URL = fake.webhook_url
        yield fake


@pytest.fixture
def stale(store, django_capture_on_commit_callbacks):
    """Make ``count`` shipped orders go 72 h without carrier news: the sweep runs 72 h from now,
    and what it asked for after commit (the drain) runs then too."""

    def make(count: int = 1):
        orders = [order_in_status(S.SHIPPED, store=store) for _ in range(count)]
        later = time_machine.travel(timezone.now() + STALE, tick=False)
        with later, django_capture_on_commit_callbacks(execute=True):
            timers_sweep()
        return orders

    return make


def states() -> list[str]:
    return list(TeamAlert.objects.order_by("pk").values_list("state", flat=True))


def test_a_stale_shipment_alert_is_posted_after_the_sweep_commits(team_chat, stale):
    (order,) = stale()

    assert len(team_chat.texts) == 1
    assert team_chat.texts[0].startswith(f"{ALERT}: 1 order\n")
    assert f"{order.store.name} {order.number} http" in team_chat.texts[0]
    assert f"/admin/orders/order/{order.pk}/change/" in team_chat.texts[0]
    assert states() == [TeamAlert.State.SENT]


def test_alerts_with_the_same_text_go_out_as_one_post_listing_their_orders(team_chat, stale):
    orders = stale(3)

    assert len(team_chat.texts) == 1
    assert team_chat.texts[0].startswith(f"{ALERT}: 3 orders\n")
    assert all(order.number in team_chat.texts[0] for order in orders)
    assert states() == [TeamAlert.State.SENT] * 3


def test_a_long_list_names_the_first_orders_and_counts_the_rest(team_chat, store):
    orders = [order_in_status(S.SHIPPED, store=store) for _ in range(MAX_LISTED + 2)]
    TeamAlert.objects.bulk_create(TeamAlert(order=order, text=ALERT) for order in orders)

    team_alerts_drain()

    assert team_chat.texts[0].endswith("… and 2 more")


def test_the_post_carries_no_customer_details(team_chat, stale):
    (order,) = stale()

    text = team_chat.texts[0]
    assert order.customer.name not in text
    assert order.customer.phone not in text


def test_an_alert_rolled_back_with_its_sweep_is_never_posted(team_chat, store):
    order = order_in_status(S.SHIPPED, store=store)

    with pytest.raises(RuntimeError), transaction.atomic():
        TeamAlert.objects.create(order=order, text=ALERT)
        raise RuntimeError("the sweep's batch failed")

    assert team_alerts_drain()["claimed"] == 0
    assert team_chat.texts == []


def test_a_busy_channel_is_tried_again_after_its_retry_after(team_chat, stale):
    team_chat.answer(FakeResponse(429, "rate_limited", headers={"Retry-After": "30"}))

    stale()

    alert = TeamAlert.objects.get()
    assert (alert.state, alert.attempts, alert.last_error) == ("queued", 1, "HTTP 429: rate_limited")
    assert alert.next_attempt_at - alert.created_at == timedelta(seconds=30)  # the clock stood still


def test_a_retry_is_posted_by_the_next_beat_once_due(team_chat, stale):
    team_chat.answer(FakeResponse(503, "service unavailable"))
    stale()

    with time_machine.travel(timezone.now() + STALE + timedelta(minutes=2), tick=False):
        timers_sweep_task()

    assert states() == [TeamAlert.State.SENT]
    assert len(team_chat.texts) == 2  # the refused post, then the one that went through


def test_a_channel_that_no_longer_exists_fails_the_alert_at_once(team_chat, stale):
    team_chat.answer(FakeResponse(410, "channel_is_archived"))

    stale()

    alert = TeamAlert.objects.get()
    assert (alert.state, alert.last_error) == ("failed", "HTTP 410: channel_is_archived")


def test_an_alert_is_failed_after_its_last_attempt(team_chat, store):
    order = order_in_status(S.SHIPPED, store=store)
    TeamAlert.objects.create(order=order, text=ALERT, attempts=MAX_ATTEMPTS - 1)
    team_chat.answer(FakeResponse(500, "rollup_error"))

    team_alerts_drain()

    assert states() == [TeamAlert.State.FAILED]


def test_an_unreachable_channel_is_tried_again(settings, stale):
    settings.TEAM_CHANNEL_WEBHOOK_URL = "http://127.0.0.1:9/services/nobody-listens"

    stale()

    alert = TeamAlert.objects.get()
    assert (alert.state, alert.last_error) == ("queued", "no answer from the team channel: ConnectionError")


def test_without_a_team_channel_the_alert_stays_on_the_timeline_and_in_admin(settings, stale):
    settings.TEAM_CHANNEL_WEBHOOK_URL = ""

    (order,) = stale()

    assert states() == [TeamAlert.State.NOT_CONFIGURED]
    assert order.events.filter(type="automation_team_alerted").count() == 1


def test_a_post_left_unanswered_by_a_crashed_drain_is_posted_after_its_lease(team_chat, store):
    order = order_in_status(S.SHIPPED, store=store)
    TeamAlert.objects.create(
        order=order, text=ALERT, state=TeamAlert.State.SENDING, claimed_at=timezone.now(), attempts=1
    )

    assert team_alerts_drain()["claimed"] == 0  # another drain may still be posting it
    with time_machine.travel(timezone.now() + timedelta(minutes=3), tick=False):
        team_alerts_drain()

    assert states() == [TeamAlert.State.SENT]
