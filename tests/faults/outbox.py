"""What the outbox's fault tests share: a store that texts through a loopback Twilio, a backlog of
queued messages made through the real outbox service, Celery workers of the test's own (on a
queue nobody else consumes), and the broker's redelivery of a killed worker's tasks.

Every worker inherits this process's environment: the Twilio fake's address and credentials,
and whatever else a test sets with ``monkeypatch.setenv`` before starting it.
"""

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.celery import app as celery_app
from messaging.models import Channel, Message, MessagingSettings
from messaging.services.outbox import notification_create
from orders.models import Customer, Order, OrderItem
from orders.transitions import PaymentMethod
from tests.celery_worker import WorkerProcess, forget_queue, publish_for_real_to
from tests.factories import StoreFactory, channel_provider_set
from tests.fakes.twilio import FakeTwilio

PREFIX = "LIVRA_FAULT_TWILIO"
SENDER = "+15005550006"  # Twilio's test From number
PRICE = Decimal("249.00")
SEND_THREADS = 8  # per worker process, as in production (LIVRA_OUTBOX_SEND_THREADS)
SETTLED = (Message.Status.SENT, Message.Status.FAILED, Message.Status.UNDELIVERABLE, Message.Status.UNKNOWN)


@pytest.fixture
def twilio(monkeypatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        for name, value in fake.env(PREFIX).items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def sms_store():
    """A store that texts every customer through Twilio, day and night."""
    store = StoreFactory()
    MessagingSettings.objects.create(
        store=store, channel_order=[Channel.SMS], quiet_hours_start=None, quiet_hours_end=None
    )
    channel_provider_set(
        store=store, channel=Channel.SMS, provider="twilio", sender=SENDER, credentials_env_prefix=PREFIX
    )
    return store


def queue_backlog(store, count: int) -> list[int]:
    """``count`` COD orders of ``store`` whose confirmation request waits in the outbox; their
    message ids. The orders are written in bulk, the messages through ``notification_create`` in
    one transaction, whose commit publishes one drain (to whichever worker starts)."""
    customers = Customer.objects.bulk_create(
        Customer(store=store, name=f"Client {n}", phone_raw=f"06{n:08d}", phone=f"+2126{n:08d}")
        for n in range(count)
    )
    orders = Order.objects.bulk_create(
        Order(
            store=store,
            customer=customer,
            external_id=f"backlog-{n}",
            number=f"#B{n}",
            payment_method=PaymentMethod.COD,
            currency=store.currency,
            total_amount=PRICE,
            cod_amount=PRICE,
            shipping_city="Casablanca",
            placed_at=timezone.now(),
        )
        for n, customer in enumerate(customers)
    )
    OrderItem.objects.bulk_create(
        OrderItem(order=order, sku="BAB-42", title="Babouches", quantity=1, unit_price=PRICE)
        for order in orders
    )
    with transaction.atomic():
        for order in orders:
            notification_create(order, event="confirmation_requested", key=f"backlog-{order.pk}")
    return list(Message.objects.filter(order__store=store).order_by("pk").values_list("pk", flat=True))


def unsettled(message_ids: list[int]) -> int:
    return Message.objects.filter(pk__in=message_ids).exclude(status__in=SETTLED).count()


def ids_with_status(message_ids: list[int], status: str) -> set[int]:
    return set(Message.objects.filter(pk__in=message_ids, status=status).values_list("pk", flat=True))


class Workers:
    """Workers of one test, all on one queue of its own: the session's worker must not be killed,
    and no task of an earlier run can be waiting there."""

    def __init__(self, log_dir):
        self.queue = f"livra-fault-{uuid.uuid4().hex[:8]}"
        self.log_dir = log_dir
        self.started: list[WorkerProcess] = []

    def start(self, pool: str = "threads", concurrency: int = 2, env: dict | None = None) -> WorkerProcess:
        """A worker as the Procfile runs it (threads by default, 2 at a time), with ``env`` added."""
        worker = WorkerProcess(
            self.queue,
            self.log_dir / f"worker-{len(self.started)}.log",
            pool=pool,
            concurrency=concurrency,
            # The Procfile's connection reuse and the production default of send threads (the
            # test settings send in the calling thread).
            env={"DB_CONN_MAX_AGE": "60", "LIVRA_OUTBOX_SEND_THREADS": str(SEND_THREADS), **(env or {})},
        )
        self.started.append(worker)
        worker.start()
        return worker

    def redeliver_unacked(self) -> int:
        """Put a killed worker's unacknowledged tasks back on the queue, as the broker does once
        their visibility timeout has passed (acks_late + reject_on_worker_lost); how many."""
        with celery_app.connection_for_write() as connection:
            channel = connection.default_channel
            client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
            tags = [
                tag
                for tag, payload in client.hgetall(channel.unacked_key).items()
                if json.loads(payload)[2] == self.queue  # [message, exchange, routing key]
            ]
            for tag in tags:
                channel.qos.restore_by_tag(tag)
        return len(tags)

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()
            print(f"--- {worker.log_path.name} ---\n{worker.log()}")


@pytest.fixture
def workers(twilio, tmp_path) -> Iterator[Workers]:
    """Start workers with ``workers.start()``; what the test publishes goes to their queue."""
    started = Workers(tmp_path)
    try:
        with publish_for_real_to(started.queue):
            yield started
    finally:
        started.stop_all()
        started.redeliver_unacked()  # nothing of ours left in the broker's unacked set
        forget_queue(redis.Redis.from_url(settings.CELERY_BROKER_URL), started.queue)
