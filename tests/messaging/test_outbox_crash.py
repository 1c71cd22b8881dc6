"""A real worker process killed (SIGKILL) in the middle of a provider call.

The worker sends through the Twilio adapter to a loopback server that takes the request and never
answers, so the kill lands while the request is out. What it leaves behind is then recovered by
the sweep in this process: the message is marked unknown, never sent a second time.

The rows a killed worker leaves in every other moment (provider answer recorded, no attempt row,
a redelivered task) are set up directly in ``test_sweep.py``; only this one needs a real process.
"""

import datetime
import json
import threading
import uuid

import pytest
import redis
import time_machine
from django.conf import settings
from django.utils import timezone

from config.celery import app as celery_app
from messaging.models import Channel, Message, MessageAttempt
from messaging.services.sweep import outbox_sweep
from orders.models import OrderEvent
from orders.services import order_transition
from tests.celery_worker import WorkerProcess, publish_for_real_to, wait_for
from tests.factories import OrderFactory, channel_provider_set
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

PREFIX = "LIVRA_CRASH_TWILIO"
ACCOUNT_SID = "AC" + "c" * 32


class TwilioThatNeverAnswers(FakeServer):
    """Takes Twilio's Messages request and holds it until released (the worker dies meanwhile)."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def handle(self, request: FakeRequest) -> FakeResponse:
        assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        self.release.wait(30)
        return FakeResponse(201, {"sid": "SM" + "0" * 32, "status": "queued"})


@pytest.fixture
def twilio():
    server = TwilioThatNeverAnswers().start()
    yield server
    server.release.set()
    server.stop()


def redeliver_unacked(queue: str) -> int:
    """Put the dead worker's unacknowledged tasks back on ``queue``, as the broker does once the
    visibility timeout has passed (acks_late + reject_on_worker_lost)."""
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        tags = [
            tag
            for tag, payload in client.hgetall(channel.unacked_key).items()
            if json.loads(payload)[2] == queue  # [message, exchange, routing key]
        ]
        for tag in tags:
            channel.qos.restore_by_tag(tag)
    return len(tags)


@pytest.fixture
def worker_env(twilio, monkeypatch):
    """The store's Twilio credentials, in the environment the workers inherit."""
    monkeypatch.setenv(f"{PREFIX}_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv(f"{PREFIX}_AUTH_TOKEN", "crash-test-token")
    monkeypatch.setenv(f"{PREFIX}_BASE_URL", twilio.base_url)
    monkeypatch.setenv(f"{PREFIX}_TIMEOUT_SECONDS", "60")


@pytest.fixture
def workers(worker_env, tmp_path):
    """Workers of this test's own (the session's shared one must not be killed), on one queue."""
    queue = f"livra-crash-{uuid.uuid4().hex[:8]}"  # never a queue an earlier run left tasks on
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(queue, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.start()
        return worker

    try:
        with publish_for_real_to(queue):
            yield start
    finally:
        for worker in started:
            worker.stop()
            print(f"--- {worker.log_path.name} ---\n{worker.log()}")
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(
            queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"
        )


def test_a_worker_killed_during_the_provider_call_leaves_a_message_the_sweep_marks_unknown(workers, twilio):
    # given a store that sends WhatsApp through Twilio, and a status change that notifies
    doomed = workers()
    order = OrderFactory()
    channel_provider_set(
        store=order.store,
        channel=Channel.WHATSAPP,
        provider="twilio",
        sender="+212522000000",
        credentials_env_prefix=PREFIX,
    )
    order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)
    message = Message.objects.get(order=order)

    # when the worker dies with the request out
    wait_for(lambda: twilio.requests, what="the worker's request to reach Twilio")
    doomed.kill()  # SIGKILL (a process this test started): no cleanup, nothing recorded
    doomed._process.wait(10)

    # then the row is as the dead worker left it: claimed, leased, attempt under way
    message.refresh_from_db()
    attempt = MessageAttempt.objects.get(message=message)
    assert message.status == Message.Status.SENDING
    assert message.lease_expires_at > timezone.now()
    assert (attempt.outcome, attempt.provider_message_id) == (MessageAttempt.Outcome.PENDING, "")

    # and the task the broker hands to another worker does not call Twilio again
    assert redeliver_unacked(doomed.queue) == 1
    successor = workers()
    wait_for(lambda: "succeeded" in successor.log(), what="the successor to run the redelivered task")
    assert len(successor.tasks_received("messaging.outbox_drain")) == 1
    assert len(twilio.requests) == 1

    # and once the lease has expired the sweep marks it unknown, and still sends nothing
    with time_machine.travel(message.lease_expires_at + datetime.timedelta(seconds=1), tick=False):
        result = outbox_sweep()
        outbox_sweep()
    message.refresh_from_db()
    assert result.marked_unknown == 1
    assert (message.status, message.attempts, message.lease_expires_at) == (Message.Status.UNKNOWN, 1, None)
    assert MessageAttempt.objects.get(message=message).outcome == MessageAttempt.Outcome.UNKNOWN
    assert len(twilio.requests) == 1
