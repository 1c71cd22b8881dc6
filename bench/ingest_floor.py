"""Settings, URLconf and floor view of bench/ingest.py: gunicorn runs it as the settings module
(``DJANGO_SETTINGS_MODULE=bench.ingest_floor``); bench-only, production never loads it.

It is Livra's settings and URLs unchanged, plus ``/bench/floor/``: the least a Django view that
stores a webhook can do on the same server, middleware, settings and connection handling as the
real endpoint. It inserts one row into ``bench_floor``, a copy of ``orders_storedelivery`` (same
columns, indexes, unique key and checks; no foreign keys) that bench/ingest.py creates, in
autocommit, and answers a small JSON 200. No store look-up, no signature check, no transaction
block, no task: what the real endpoint does beyond this is what the bench measures.
"""

import json

from config.settings import *  # noqa: F403 - Livra's settings, unchanged but for the URLconf

ROOT_URLCONF = "bench.ingest_floor"

FLOOR_TABLE = "bench_floor"
FLOOR_STORE_ID = 1  # no foreign key: any number
TOPIC_HEADER = "X-Shopify-Topic"
KEY_HEADER = "X-Shopify-Event-Id"
# What the Shopify adapter keeps (orders.platforms.shopify.ShopifyPlatform.kept_headers).
KEPT_HEADERS = (
    "X-Shopify-Topic",
    "X-Shopify-Shop-Domain",
    "X-Shopify-API-Version",
    "X-Shopify-Webhook-Id",
    "X-Shopify-Event-Id",
    "X-Shopify-Triggered-At",
)
INSERT = (
    f"INSERT INTO {FLOOR_TABLE} (store_id, platform, topic, idempotency_key, headers, body, received_at, "
    "status, notes, error, error_trace, attempts) "
    "VALUES (%s, 'shopify', %s, %s, %s, %s, %s, 'received', '[]', '', '', 0) RETURNING id"
)


def floor_delivery(request):
    from django.db import connection
    from django.http import JsonResponse
    from django.utils import timezone

    headers = {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}
    params = [
        FLOOR_STORE_ID,
        request.headers.get(TOPIC_HEADER, ""),
        request.headers.get(KEY_HEADER, ""),
        json.dumps(headers),
        request.body,
        timezone.now(),
    ]
    with connection.cursor() as cursor:
        cursor.execute(INSERT, params)
        (row_id,) = cursor.fetchone()
    return JsonResponse({"delivery": row_id, "duplicate": False})


def __getattr__(name: str):
    # This module is the URLconf too, but Livra's URLs import the admin and the apps' views, which
    # cannot load while settings do: the patterns are built when Django first asks for them. The
    # floor comes last so that resolving it walks Livra's patterns as the real endpoint does.
    if name == "urlpatterns":
        from django.urls import path
        from django.views.decorators.csrf import csrf_exempt
        from django.views.decorators.http import require_POST

        from config.urls import urlpatterns as livra_urlpatterns

        # The real view's decorators, so both pay the same wrapping.
        floor = csrf_exempt(require_POST(floor_delivery))
        return [*livra_urlpatterns, path("bench/floor/", floor)]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
