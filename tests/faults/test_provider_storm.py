"""The provider storms while a real worker drains a backlog: nothing fails, nothing goes twice.

For a few seconds the loopback Twilio answers four calls in five with a 429 (``Retry-After``) or
a 5xx, then recovers. The worker retries through its own backoff (its base shortened by the
environment, so that the test takes seconds, not minutes). The fake records when each call
came and what it was told, so the test can check every retry against the Retry-After it got.
"""

import itertools

import pytest

from messaging.models import Message
from messaging.services.outbox import MAX_ATTEMPTS
from tests.celery_worker import wait_for
from tests.faults.outbox import (
    ids_with_status,
    queue_backlog,
    unsettled,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

BACKLOG = 100
STORM_SECONDS = 3
RETRY_AFTER = 2  # seconds, in each 429's header
BACKOFF_BASE = "1"  # seconds: the first retry after a 5xx waits 0.5–1 s, the next 1–2 s, …


def test_a_provider_storm_delays_the_backlog_but_every_message_goes_once_and_no_retry_comes_early(
    twilio,
    sms_store,
    workers,
):
    # given a worker, and a provider that storms from the first call on
    workers.start(env={"LIVRA_OUTBOX_BACKOFF_BASE_SECONDS": BACKOFF_BASE})
    twilio.storm(seconds=STORM_SECONDS, retry_after=RETRY_AFTER)

    # when a backlog is queued
    message_ids = queue_backlog(sms_store, BACKLOG)
    wait_for(lambda: not unsettled(message_ids), timeout=60, what="the backlog to settle")

    # then every message was accepted exactly once, and nothing was called after its acceptance
    calls = twilio.calls_by_message_id()
    assert sorted(calls) == message_ids
    for received in calls.values():
        assert [call.accepted for call in received] == [False] * (len(received) - 1) + [True]
    # and nothing failed: the storm was weathered
    assert ids_with_status(message_ids, "sent") == set(message_ids)
    assert max(len(received) for received in calls.values()) < MAX_ATTEMPTS
    # and no retry came sooner than the Retry-After it was told
    throttled_then_retried = [
        (earlier, later)
        for received in calls.values()
        for earlier, later in itertools.pairwise(received)
        if earlier.retry_after is not None
    ]
    waits = [later.at - earlier.at for earlier, later in throttled_then_retried]
    print(
        f"{sum(len(r) - 1 for r in calls.values())} calls refused in the storm, "
        f"{len(waits)} retries after a 429, the shortest {min(waits):.2f} s after it"
    )
    assert waits, "the storm throttled no message that was retried"
    assert min(waits) >= RETRY_AFTER
    # and each message's attempts are the calls the provider got for it
    attempts = dict(Message.objects.filter(pk__in=message_ids).values_list("pk", "attempts"))
    assert attempts == {message_id: len(received) for message_id, received in calls.items()}
