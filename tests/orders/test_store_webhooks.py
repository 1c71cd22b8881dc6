"""Store webhooks end to end: a signed delivery posted like the platform posts it, the inbox row,
and what processing (run by the commit, as in production) does with it.

Payloads are the platforms' documented examples (tests/fixtures/stores/); signatures are computed
here exactly as the platforms compute them.
"""

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from messaging.models import Message
from orders.models import Order, StoreDelivery
from orders.services.inbox import store_delivery_sweep
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stores"
SHOPIFY_SECRET = "shpss_" + "a1b2c3d4" * 4
SHOP_DOMAIN = "atlas-souk.myshopify.com"


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


@pytest.fixture
def store():
    return StoreFactory(slug="atlas-souk", platform_secret=SHOPIFY_SECRET, shop_domain=SHOP_DOMAIN)


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """POST a delivery and run what its commit queues (the processing task, inline)."""

    def post(platform: str, store, body: bytes, headers: dict, content_type="application/json"):
        url = reverse("orders:store-webhook", args=[platform, store.slug])
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data=body, content_type=content_type, headers=headers)

    return post


def shopify_headers(body: bytes, topic="orders/create", event_id=None, secret=SHOPIFY_SECRET) -> dict:
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": SHOP_DOMAIN,
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2024-11-10T09:30:01.000000000Z",
    }


def woocommerce_headers(body: bytes, secret: str, topic="order.created") -> dict:
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-WC-Webhook-Source": "https://atlas-souk.ma/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[1],
        "X-WC-Webhook-Signature": signature,
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
    }


def generic_headers(body: bytes, secret: str, timestamp: int | None = None, topic="order.created") -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    return {
        "X-Livra-Timestamp": str(timestamp),
        "X-Livra-Signature": hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest(),
        "X-Livra-Event-Id": uuid.uuid4().hex,
        "X-Livra-Topic": topic,
    }


def with_field(body: bytes, **fields) -> bytes:
    return json.dumps({**json.loads(body), **fields}).encode()


# --- Shopify -------------------------------------------------------------------------------------
def test_a_shopify_cod_order_from_morocco_becomes_an_order_awaiting_confirmation(store, post):
    body = fixture("shopify/orders_create.json")

    response = post("shopify", store, body, shopify_headers(body))

    assert response.status_code == 200
    delivery = StoreDelivery.objects.get()
    assert (delivery.status, delivery.topic, bytes(delivery.body)) == ("processed", "orders/create", body)
    order = Order.objects.get(store=store)
    assert delivery.order == order
    assert (order.payment_method, order.status) == ("cod", "awaiting_confirmation")
    assert order.customer.phone.startswith("+212")


def test_the_same_shopify_delivery_five_times_gives_one_order_one_event_one_message(store, post):
    body = fixture("shopify/orders_create.json")
    headers = shopify_headers(body)

    responses = [post("shopify", store, body, headers) for _ in range(5)]

    assert [r.status_code for r in responses] == [200] * 5
    assert [r.json()["duplicate"] for r in responses] == [False, True, True, True, True]
    assert StoreDelivery.objects.count() == 1
    order = Order.objects.get(store=store)
    assert order.events.filter(type="placed").count() == 1
    assert order.events.filter(type="confirmation_requested").count() == 1
    assert Message.objects.filter(order=order).count() == 1


def test_a_redelivered_event_with_a_new_webhook_id_is_still_one_order(store, post):
    body = fixture("shopify/orders_create.json")

    for _ in range(2):
        post("shopify", store, body, shopify_headers(body, event_id="98880550-7158-44d4-b7cd-2c97c8a091b5"))
    post("shopify", store, body, shopify_headers(body))  # another event id: processed, no new order

    assert StoreDelivery.objects.count() == 2
    assert Order.objects.filter(store=store).count() == 1


def test_an_older_shopify_update_after_a_newer_one_changes_nothing(store, post):
    created = fixture("shopify/orders_create.json")
    post("shopify", store, created, shopify_headers(created))
    newer = with_field(created, updated_at="2024-11-10T12:00:00+01:00", note="newer")
    older = with_field(created, updated_at="2024-11-10T11:00:00+01:00", note="older")

    post("shopify", store, newer, shopify_headers(newer, topic="orders/updated"))
    post("shopify", store, older, shopify_headers(older, topic="orders/updated"))

    assert Order.objects.get(store=store).notes == "newer"
    assert StoreDelivery.objects.order_by("pk").last().status == "skipped"


def test_a_bad_shopify_signature_is_refused_with_401_logged_without_the_payload(store, post, caplog):
    body = fixture("shopify/orders_create.json")

    with caplog.at_level(logging.WARNING, logger="orders.webhooks"):
        response = post("shopify", store, body, shopify_headers(body, secret="not-the-secret"))

    assert response.status_code == 401
    assert not StoreDelivery.objects.exists()
    assert "bad or missing signature" in caplog.text
    assert "salma" not in caplog.text.lower()


def test_a_delivery_without_a_signature_is_refused(store, post):
    body = fixture("shopify/orders_create.json")
    headers = shopify_headers(body)
    del headers["X-Shopify-Hmac-Sha256"]

    assert post("shopify", store, body, headers).status_code == 401


def test_an_unknown_shopify_topic_is_kept_and_flagged(store, post):
    body = fixture("shopify/orders_create.json")

    response = post("shopify", store, body, shopify_headers(body, topic="products/update"))

    assert response.status_code == 200
    delivery = StoreDelivery.objects.get()
    assert delivery.status == "flagged" and "unknown topic" in delivery.notes[0]
    assert not Order.objects.exists()


def test_malformed_json_with_a_good_signature_is_kept_raw_and_flagged(store, post):
    body = b'{"id": 6123456789012, "line_items": [,'

    response = post("shopify", store, body, shopify_headers(body))

    assert response.status_code == 200
    delivery = StoreDelivery.objects.get()
    assert (delivery.status, bytes(delivery.body)) == ("flagged", body)
    assert "not JSON" in delivery.notes[0]


def youcan_headers(body: bytes, secret: str) -> dict:
    return {"x-youcan-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def signed_headers(platform: str, store, body: bytes) -> dict:
    return {
        "shopify": lambda: shopify_headers(body),
        "woocommerce": lambda: woocommerce_headers(body, store.webhook_secret),
        "youcan": lambda: youcan_headers(body, store.platform_secret),
        "generic": lambda: generic_headers(body, store.webhook_secret),
    }[platform]()


@pytest.mark.parametrize("platform", ["shopify", "woocommerce", "youcan", "generic"])
def test_a_signed_body_of_5000_nested_brackets_is_kept_raw_and_flagged(store, post, platform):
    body = b"[" * 5000

    response = post(platform, store, body, signed_headers(platform, store, body))

    assert response.status_code == 200
    delivery = StoreDelivery.objects.get()
    assert (delivery.status, bytes(delivery.body)) == ("flagged", body)
    assert delivery.notes == ["the body is not JSON: nested deeper than 64 levels"]


def test_a_signed_order_placed_at_an_offset_no_zone_has_is_flagged_not_failed(store, post):
    body = with_field(fixture("generic/order_created.json"), placed_at="2025-06-10T14:32:07-18:06")

    post("generic", store, body, generic_headers(body, store.webhook_secret))

    delivery = StoreDelivery.objects.get()
    assert delivery.status == "flagged"
    assert "placed_at: Give a UTC offset between -15:59 and +15:59." in delivery.notes[0]
    assert not Order.objects.exists()


@pytest.mark.parametrize(("field", "value"), [("name", "#" + "9" * 60), ("currency", "MOROCCAN DIRHAM")])
def test_a_signed_order_with_a_value_too_big_for_its_column_is_flagged_not_failed(store, post, field, value):
    body = with_field(fixture("shopify/orders_create.json"), **{field: value})

    post("shopify", store, body, shopify_headers(body))

    delivery = StoreDelivery.objects.get()
    assert delivery.status == "flagged", delivery.error
    assert delivery.notes[0].startswith("a value does not fit Livra's columns: value too long")
    assert not Order.objects.exists()


def test_a_payload_over_the_size_limit_is_refused_with_413(store, post, settings):
    settings.LIVRA_STORE_WEBHOOK_MAX_BYTES = 10_000
    body = with_field(fixture("shopify/orders_create.json"), note="x" * 20_000)

    response = post("shopify", store, body, shopify_headers(body))

    assert response.status_code == 413
    assert not StoreDelivery.objects.exists()


def test_an_unknown_store_is_a_404(store, post):
    body = fixture("shopify/orders_create.json")

    assert post("shopify", StoreFactory.build(slug="nobody"), body, shopify_headers(body)).status_code == 404


def test_a_get_on_a_store_webhook_is_refused_with_a_json_405(store, client):
    response = client.get(reverse("orders:store-webhook", args=["shopify", store.slug]))

    assert (response.status_code, response["Allow"]) == (405, "POST")
    assert response.json() == {"detail": 'Method "GET" not allowed.'}


@pytest.mark.parametrize(
    ("platform", "slug", "headers", "status"),
    [
        ("shopify", "atlas-souk", {}, 401),
        ("shopify", "nobody", {}, 404),
        ("magento", "atlas-souk", {}, 404),
    ],
)
def test_every_refusal_is_json_with_a_detail(store, post, platform, slug, headers, status):
    response = post(platform, StoreFactory.build(slug=slug), b"{}", headers)

    assert (response.status_code, response["Content-Type"]) == (status, "application/json")
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("path", ["/webhooks/shopify/", "/webhooks/shopify/atlas-souk/extra/", "/webhooks/"])
def test_a_webhook_path_that_names_nothing_is_a_json_404(client, path):
    response = client.post(path, data=b"{}", content_type="application/json")

    assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


# --- WooCommerce ---------------------------------------------------------------------------------
def test_a_woocommerce_cod_order_becomes_an_order_awaiting_confirmation(store, post):
    body = fixture("woocommerce/order_created_cod.json")

    response = post("woocommerce", store, body, woocommerce_headers(body, store.webhook_secret))

    assert response.status_code == 200
    order = Order.objects.get(store=store)
    assert (order.payment_method, order.status) == ("cod", "awaiting_confirmation")
    assert order.customer.phone.startswith("+212")


def test_the_woocommerce_creation_ping_is_answered_200_and_stores_nothing(store, post):
    response = post(
        "woocommerce", store, b"webhook_id=12", {}, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    assert not StoreDelivery.objects.exists()


def test_a_woocommerce_delivery_signed_with_another_secret_is_refused(store, post):
    body = fixture("woocommerce/order_created_cod.json")

    assert post("woocommerce", store, body, woocommerce_headers(body, "wrong")).status_code == 401


# --- generic -------------------------------------------------------------------------------------
def test_a_generic_delivery_signed_with_the_stores_secret_creates_the_order(store, post):
    body = fixture("generic/order_created.json")

    response = post("generic", store, body, generic_headers(body, store.webhook_secret))

    assert response.status_code == 200
    assert Order.objects.filter(store=store).count() == 1


def test_a_generic_delivery_replayed_after_five_minutes_is_refused(store, post):
    body = fixture("generic/order_created.json")
    headers = generic_headers(body, store.webhook_secret, timestamp=int(time.time()) - 301)

    assert post("generic", store, body, headers).status_code == 401
    assert not StoreDelivery.objects.exists()


# --- the inbox sweep ---------------------------------------------------------------------------
def test_a_delivery_whose_task_was_lost_is_processed_by_the_sweep(store, django_capture_on_commit_callbacks):
    body = fixture("shopify/orders_create.json")
    delivery = StoreDelivery.objects.create(
        store=store, platform="shopify", topic="orders/create", idempotency_key="lost", headers={}, body=body
    )

    later = timezone.now() + timedelta(minutes=3)
    with time_machine.travel(later), django_capture_on_commit_callbacks(execute=True):
        queued = store_delivery_sweep()

    delivery.refresh_from_db()
    assert (queued, delivery.status) == (1, "processed")
    assert Order.objects.filter(store=store).count() == 1


def test_the_sweep_leaves_fresh_deliveries_to_their_own_task(store):
    StoreDelivery.objects.create(
        store=store,
        platform="shopify",
        topic="orders/create",
        idempotency_key="fresh",
        headers={},
        body=b"{}",
    )

    assert store_delivery_sweep() == 0


def test_the_inbox_sweep_is_scheduled_every_minute_with_celery_beat():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="orders: store inbox sweep")
    assert (task.task, task.interval.every, task.interval.period) == (
        "orders.store_delivery_sweep",
        60,
        "seconds",
    )
