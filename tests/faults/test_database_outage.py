"""The database drops every connection (a restart or a failover) under running processes.

gunicorn and a worker (the Procfile's pool) keep their PostgreSQL connections between requests
and tasks (``DB_CONN_MAX_AGE=60``), and beat runs the inbox sweep. ``pg_terminate_backend`` cuts
all of them; the requests, tasks and sweeps that come next must find a new connection by
themselves: no error, nothing lost, each message once at a loopback Twilio.
"""

import uuid
from datetime import timedelta

import pytest
import requests
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from messaging.models import Message
from orders.api.tokens import api_token_create
from orders.models import Order, StoreDelivery
from tests.api.conftest import member_of
from tests.celery_worker import WorkerProcess, wait_for
from tests.fakes.twilio import FakeTwilio
from tests.faults.processes import BeatProcess, WebServer
from tests.faults.services import RedisServer, pg_terminate_backends
from tests.faults.test_broker_outage import phone, shopify_order, store_on_twilio
from tests.orders.test_store_webhooks import shopify_headers

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

KEPT_CONNECTIONS = {"DB_CONN_MAX_AGE": "60"}


@pytest.fixture
def twilio():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def livra(tmp_path, twilio):
    """Web, worker and beat on a Redis of their own, as the Procfile runs them."""
    redis_server = RedisServer(tmp_path / "redis").start()
    queue = f"livra-database-outage-{uuid.uuid4().hex[:8]}"
    web = WebServer(tmp_path / "web.log", broker_url=redis_server.url, queue=queue)
    provider_env = {**twilio.env("LIVRA_TWILIO"), "LIVRA_PUBLIC_URL": web.url}
    web.env.update(provider_env, **KEPT_CONNECTIONS)
    worker = WorkerProcess(
        queue,
        tmp_path / "worker.log",
        broker_url=redis_server.url,
        pool="threads",
        concurrency=2,
        env={**provider_env, **KEPT_CONNECTIONS},
    )
    beat = BeatProcess(tmp_path / "beat.log", broker_url=redis_server.url, queue=queue)
    # The inbox sweep every second (its beat entry says every minute), so that the test sees it run.
    PeriodicTask.objects.all().delete()
    PeriodicTask.objects.create(
        name="store inbox sweep",
        task="orders.store_delivery_sweep",
        interval=IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS),
    )
    started = []
    try:
        for process in (web, worker, beat):
            started.append(process)  # stopped below even if its start fails half-way
            process.start()
        yield web
    finally:
        for process in reversed(started):
            process.stop()
        redis_server.stop()
        for process in started:
            print(f"--- {process.log_path.name} ---\n{process.log()}")


def post_order(web, store, n: int) -> requests.Response:
    body = shopify_order(n)
    url = web.url + reverse("orders:store-webhook", args=["shopify", store.slug])
    headers = {"Content-Type": "application/json", **shopify_headers(body)}
    return requests.post(url, data=body, headers=headers, timeout=10)


def sent_to(twilio, n: int) -> int:
    return len(twilio.sent_to(phone(n)))


def test_after_the_database_cuts_every_connection_the_next_requests_tasks_and_sweeps_succeed(livra, twilio):
    web = livra
    store = store_on_twilio()
    _, token = api_token_create(member_of(store), name="fault test")
    # given: an order came in and was asked to confirm, so every process holds a connection
    assert post_order(web, store, 0).status_code == 200
    request = wait_for(
        lambda: Message.objects.filter(status=Message.Status.SENT).first(),
        timeout=30,
        what="the first confirmation request to be sent",
    )

    # when: the database drops them all (web's, the worker's, beat's)
    assert pg_terminate_backends() > 0

    # then: the web server's next requests succeed: a store webhook, an API transition, a receipt
    assert post_order(web, store, 1).status_code == 200
    transition = requests.post(
        web.url + reverse("api:order-transitions", args=[Order.objects.get(customer__phone=phone(0)).pk]),
        json={"name": "confirm"},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert transition.status_code == 200
    assert twilio.callback(request.provider_message_id, "delivered").deliver() == 200
    # and beat's next sweep finds a delivery whose wake-up was lost
    lost = StoreDelivery.objects.create(
        store=store, platform="shopify", topic="orders/create", idempotency_key="lost", body=shopify_order(2)
    )
    StoreDelivery.objects.filter(pk=lost.pk).update(received_at=timezone.now() - timedelta(minutes=3))
    # and the worker's next tasks process both deliveries and send what each order is owed, once
    wait_for(
        lambda: (sent_to(twilio, 0), sent_to(twilio, 1), sent_to(twilio, 2)) == (2, 1, 1),
        timeout=30,
        what="the confirmation, and the two new orders' confirmation requests",
    )
    assert StoreDelivery.objects.filter(status=StoreDelivery.Status.PROCESSED).count() == 3
    request.refresh_from_db()
    assert request.status == Message.Status.DELIVERED
    assert Message.objects.filter(status=Message.Status.SENT).count() == 3
    assert len(twilio.sent) == 4
