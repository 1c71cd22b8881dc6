"""Bursts of Shopify deliveries through gunicorn, processed by a worker on the Procfile's threads pool.

Shopify sends a delivery again when it is not sure the first arrived, so the same event often comes
several times at once. Here 150 signed ``orders/create`` deliveries are each posted 5× at once over
real HTTP to Livra under gunicorn, and a real worker on the Procfile's pool (``--pool threads``,
with 8 threads rather than 2 so that more drains overlap) processes them on PostgreSQL, with a
broker of its own (``redis-server``) and a loopback WhatsApp Cloud API.

When django-fsm's reload switched the status's protection off and on for every thread, 3 to 6 % of
these deliveries failed ("Direct status modification is not allowed"). Counted at the fake: every
order's customer is asked to confirm exactly once.
"""

import base64
import hashlib
import hmac
import http.client
import json
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from messaging.models import Message, MessageTemplate, MessagingSettings
from orders.models import Order, StoreDelivery
from tests.celery_worker import WorkerProcess, wait_for
from tests.factories import StoreFactory, channel_provider_set
from tests.fakes.whatsapp_cloud import WhatsAppCloudFake
from tests.faults.processes import WebServer
from tests.orders.test_store_webhooks import SHOP_DOMAIN, SHOPIFY_SECRET, fixture

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

ORDERS = 150
COPIES = 5  # each delivery posted this many times at once
WORKER_THREADS = 8
CLIENT_CONNECTIONS = 10  # two deliveries' copies in flight at a time
PREFIX = "LIVRA_THREADS_WA"


@pytest.fixture
def whatsapp():
    with WhatsAppCloudFake() as fake:
        yield fake


@pytest.fixture
def store(whatsapp):
    """A Shopify store that asks its COD customers to confirm on WhatsApp (Cloud API), day and night."""
    store = StoreFactory(platform_secret=SHOPIFY_SECRET, shop_domain=SHOP_DOMAIN)
    MessagingSettings.objects.update_or_create(
        store=store, defaults={"quiet_hours_start": None, "quiet_hours_end": None}
    )
    channel_provider_set(
        store=store,
        channel="whatsapp",
        provider="whatsapp_cloud",
        sender=whatsapp.phone_number_id,
        credentials_env_prefix=PREFIX,
    )
    MessageTemplate.objects.create(  # outside the 24 h window WhatsApp takes only an approved template
        store=store,
        event="confirmation_requested",
        channel="whatsapp",
        language="fr",
        body="Bonjour {customer_name}, confirmez-vous la commande {order_number} ({cod_amount}) ?",
        whatsapp_template_name="cod_confirmation",
        whatsapp_language_code="fr",
        body_parameters=["customer_name", "order_number", "cod_amount"],
        buttons=[{"id": "confirm", "title": "Confirmer"}, {"id": "cancel", "title": "Annuler"}],
    )
    return store


@pytest.fixture
def livra(redis_server, whatsapp, store, tmp_path):
    """gunicorn and a worker on the threads pool, sharing the test's database and broker."""
    queue = f"livra-threads-{uuid.uuid4().hex[:8]}"
    credentials = {
        f"{PREFIX}_ACCESS_TOKEN": whatsapp.access_token,
        f"{PREFIX}_APP_SECRET": whatsapp.app_secret,
        f"{PREFIX}_BASE_URL": whatsapp.base_url,
    }
    web = WebServer(
        tmp_path / "gunicorn.log",
        broker_url=redis_server.url,
        queue=queue,
        workers=2,
        env={"LOG_LEVEL": "WARNING"},  # 750 requests: their info lines would cost the test time
    )
    worker = WorkerProcess(
        queue,
        tmp_path / "worker.log",
        broker_url=redis_server.url,
        pool="threads",
        concurrency=WORKER_THREADS,
        env=credentials,
    )
    try:
        web.launch()  # loads Django while the worker starts
        worker.start()
        yield web.wait_ready()
    finally:
        web.stop()
        worker.stop()
        print(f"--- worker log ---\n{worker.log()[-20000:]}")
        print(f"--- gunicorn log ---\n{web.log()[-5000:]}")


def shopify_deliveries(count: int) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` different COD orders of different customers, as Shopify signs and sends them."""
    order = json.loads(fixture("shopify/orders_create.json"))
    triggered_at = datetime.now(UTC).isoformat()
    deliveries = []
    for n in range(count):
        email = f"client{n}@example.com"
        variant = {
            **order,
            "id": order["id"] + n,
            "name": f"#{20001 + n}",
            "order_number": 20001 + n,
            "phone": f"+2126{10_000_000 + n}",
            "email": email,
            "contact_email": email,
            "customer": {**order["customer"], "id": order["customer"]["id"] + n, "email": email},
        }
        body = json.dumps(variant, separators=(",", ":"), ensure_ascii=False).encode()
        signature = base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": signature.decode(),
            "X-Shopify-Shop-Domain": SHOP_DOMAIN,
            "X-Shopify-API-Version": "2024-10",
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": triggered_at,
        }
        deliveries.append((body, headers))
    return deliveries


def post(address: tuple[str, int], path: str, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_deliveries_posted_five_times_at_once_are_each_processed_once_on_a_threads_pool(
    livra, store, whatsapp
):
    # given 150 deliveries, each to be posted 5× at once
    path = f"/webhooks/shopify/{store.slug}/"
    posts = [delivery for delivery in shopify_deliveries(ORDERS) for _ in range(COPIES)]

    # when they are posted
    with ThreadPoolExecutor(CLIENT_CONNECTIONS) as client:
        answers = Counter(client.map(lambda delivery: post(livra.address, path, *delivery), posts))

    # then every post was accepted, once per delivery in the inbox
    assert answers == {200: ORDERS * COPIES}
    assert StoreDelivery.objects.filter(store=store).count() == ORDERS

    # and every delivery was processed, none failed nor left for a retry
    wait_for(
        lambda: not StoreDelivery.objects.filter(store=store, status="received").exists(),
        timeout=60,
        what="the worker to process every delivery",
    )
    statuses = Counter(StoreDelivery.objects.filter(store=store).values_list("status", flat=True))
    assert statuses == {"processed": ORDERS}

    # and each Shopify order is one order, awaiting its customer's confirmation
    assert Order.objects.filter(store=store).values("external_id").distinct().count() == ORDERS
    assert set(Order.objects.filter(store=store).values_list("status", flat=True)) == {
        "awaiting_confirmation"
    }

    # and WhatsApp got one confirmation request per order, no more (counted at the fake)
    wait_for(
        lambda: Message.objects.filter(order__store=store, status="sent").count() == ORDERS,
        timeout=60,
        what="every confirmation request to be sent",
    )
    sends = Counter(request.json()["to"] for request in whatsapp.requests)
    assert len(sends) == ORDERS
    assert set(sends.values()) == {1}
    assert whatsapp.refused == []
