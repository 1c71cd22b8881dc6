"""A real worker killed (SIGKILL) while it sends the outbox: nothing is lost, nothing sent twice.

The worker sends through the real Twilio SDK to the loopback fake, which counts the create calls
it gets by Livra's message id (it rides in each message's StatusCallback URL). After the kill the
sweep runs in this process, time-travelled past the dead worker's leases, and a second worker
takes over. At the fake: every message arrived, and none twice; Livra marks "unknown" only
calls that were under way (or whose answer was not yet written) when the worker died: at most
one per send thread of each drain.

The rows a killed worker leaves at each moment of a call (claimed, started, answered, recorded)
are set up one by one in ``tests/messaging/test_sweep.py``; here the moments fall where they may.
"""

import datetime

import pytest
import time_machine
from django.db.models import Max
from django.utils import timezone

from messaging.models import Message, MessageAttempt
from messaging.services.sweep import outbox_sweep
from orders.models import OrderEvent
from orders.services import order_transition
from tests.celery_worker import wait_for
from tests.factories import OrderFactory
from tests.faults.outbox import (
    SEND_THREADS,
    ids_with_status,
    queue_backlog,
    unsettled,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

BACKLOG = 150
KILL_AFTER = 60  # accepted by the fake: amid the first two batches
PROVIDER_LATENCY = (0.05, 0.2)  # seconds, as the issue measured
DRAINS = 2  # at a time: the worker's concurrency, either pool


def sweep_after_the_leases(message_ids: list[int]):
    """The beat sweep, once every lease the dead worker held has expired."""
    leases = Message.objects.filter(pk__in=message_ids).aggregate(last=Max("lease_expires_at"))["last"]
    with time_machine.travel(leases + datetime.timedelta(seconds=1), tick=False):
        return outbox_sweep()


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_worker_killed_mid_drain_leaves_no_message_unsent_and_none_sent_twice(
    pool,
    twilio,
    sms_store,
    workers,
):
    # given a backlog, a provider answering in 50–200 ms, and a worker draining it
    twilio.answer_after(*PROVIDER_LATENCY)
    message_ids = queue_backlog(sms_store, BACKLOG)
    doomed = workers.start(pool)

    # when the worker is killed mid-drain, after some messages were accepted
    wait_for(lambda: len(twilio.sent) >= KILL_AFTER, timeout=30, what="the first acceptances")
    doomed.kill()
    claimed_not_called = MessageAttempt.objects.filter(
        message_id__in=message_ids, started_at__isnull=True
    ).count()

    # and the broker hands its tasks on, the sweep recovers the expired leases, a worker takes over
    workers.redeliver_unacked()
    swept = sweep_after_the_leases(message_ids)
    workers.start(pool)
    wait_for(lambda: not unsettled(message_ids), timeout=60, what="the backlog to settle")

    # then every message reached the fake, except perhaps some Livra marks unknown; none twice
    calls = twilio.calls_by_message_id()
    sent, unknown = ids_with_status(message_ids, "sent"), ids_with_status(message_ids, "unknown")
    print(
        f"{pool}: {claimed_not_called} claimed and never called at the kill, {swept.requeued} queued "
        f"again, {len(unknown)} unknown ({len(unknown - set(calls))} of them never reached the fake)"
    )
    assert sent | unknown == set(message_ids)
    assert set(message_ids) - set(calls) <= unknown
    assert [message_id for message_id, received in calls.items() if len(received) > 1] == []
    # and only calls under way (or just answered) are unknown: at most a send thread's worth per drain
    assert len(unknown) <= DRAINS * SEND_THREADS
    # and what was claimed but never called was sent again, without using up an attempt
    assert swept.requeued == claimed_not_called > 0
    assert set(Message.objects.filter(pk__in=sent).values_list("attempts", flat=True)) == {1}


def test_a_worker_killed_during_the_provider_call_leaves_a_message_the_sweep_marks_unknown(
    twilio,
    sms_store,
    workers,
):
    # given a Twilio that takes the request and holds its answer
    twilio.hang_next(30)
    doomed = workers.start()
    order = OrderFactory(store=sms_store)
    order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)
    message = Message.objects.get(order=order)

    # when the worker dies with the request out
    wait_for(lambda: twilio.sent, what="the worker's request to reach Twilio")
    doomed.kill()

    # then the row is as the dead worker left it: claimed, leased, call started, no answer
    message.refresh_from_db()
    attempt = MessageAttempt.objects.get(message=message)
    assert message.status == Message.Status.SENDING
    assert message.lease_expires_at > timezone.now()
    assert attempt.started_at is not None
    assert (attempt.outcome, attempt.provider_message_id) == (MessageAttempt.Outcome.PENDING, "")

    # and the task the broker hands to another worker does not call Twilio again
    assert workers.redeliver_unacked() == 1
    successor = workers.start()
    wait_for(lambda: "succeeded" in successor.log(), what="the successor to run the redelivered task")
    assert len(successor.tasks_received("messaging.outbox_drain")) == 1
    assert len(twilio.create_calls) == 1

    # and once the lease has expired the sweep marks it unknown, and still sends nothing
    result = sweep_after_the_leases([message.pk])
    with time_machine.travel(message.lease_expires_at + datetime.timedelta(seconds=2), tick=False):
        outbox_sweep()
    message.refresh_from_db()
    assert result.marked_unknown == 1
    assert (message.status, message.attempts, message.lease_expires_at) == (Message.Status.UNKNOWN, 1, None)
    assert MessageAttempt.objects.get(message=message).outcome == MessageAttempt.Outcome.UNKNOWN
    assert len(twilio.create_calls) == 1
