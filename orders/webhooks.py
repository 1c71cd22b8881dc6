"""Store platforms' webhooks: verify, store raw, answer. Processing happens in a task.

Shopify gives a delivery 5 seconds and WooCommerce disables a webhook after a few failures, so
the request does the least that makes the delivery safe: it checks the signature over the raw
body, writes one inbox row (a duplicate is answered 200 and not stored again) and returns.
Every refusal is JSON, ``{"detail": …}`` as the REST API's; a signed body is stored whatever it
holds.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from orders.platforms import PingDelivery, get_platform, platform_names
from orders.services.inbox import store_delivery_receive
from orders.store_cache import store_by_slug

logger = logging.getLogger(__name__)


@csrf_exempt
def store_webhook(request, platform: str, store_slug: str):
    if request.method != "POST":
        answer = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
        answer["Allow"] = "POST"
        return answer
    if platform not in platform_names():
        return JsonResponse({"detail": f"Unknown platform {platform!r}."}, status=404)
    store = store_by_slug(store_slug)
    if store is None:
        logger.warning("store webhook for an unknown store platform=%s", platform)
        return JsonResponse({"detail": "Unknown store."}, status=404)
    body = body_within_limit(request)
    if body is None:
        logger.warning("store webhook refused: body too large platform=%s store_id=%s", platform, store.pk)
        return JsonResponse({"detail": "Payload too large."}, status=413)
    adapter = get_platform(platform)
    try:
        verified = adapter.verify(request, store, now=timezone.now())
    except PingDelivery:
        logger.info("store webhook ping platform=%s store_id=%s", platform, store.pk)
        return HttpResponse(status=200)
    if not verified:
        # Nothing of the payload in the log: it is unauthenticated and may carry personal data.
        logger.warning(
            "store webhook refused: bad or missing signature platform=%s store_id=%s bytes=%s",
            platform,
            store.pk,
            len(body),
        )
        return JsonResponse({"detail": "Bad or missing signature."}, status=401)
    headers = {name: request.headers[name] for name in adapter.kept_headers if name in request.headers}
    delivery_id, created = store_delivery_receive(
        store,
        platform,
        topic=adapter.topic(request),
        idempotency_key=adapter.idempotency_key(request),
        headers=headers,
        body=body,
    )
    return JsonResponse({"delivery": delivery_id, "duplicate": not created}, status=200)


def body_within_limit(request) -> bytes | None:
    limit = settings.LIVRA_STORE_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    return body if len(body) <= limit else None
