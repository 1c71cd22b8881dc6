"""Provider webhooks (delivery receipts and inbound messages), one view for every provider.

Verify the signature over the raw body, store the request raw (deduplicated), then apply it.
A bad signature is refused with 403 and logged without the payload; every refusal is JSON,
``{"detail": …}`` as the REST API's. Nothing accepted is lost: an unknown message id or an
unreadable payload (not JSON, nested too deep…) is kept and flagged for ops.
"""

import hashlib
import logging

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from messaging.models import ChannelProvider, ProviderWebhook
from messaging.providers import ProviderConfig, get_provider
from messaging.services.inbound import inbound_reply_handle
from messaging.services.receipts import message_apply_status
from orders.models import Store

logger = logging.getLogger(__name__)
KEPT_HEADERS = (
    "Content-Type",
    "User-Agent",
    "X-Twilio-Signature",
    "X-Hub-Signature-256",
    "X-Twilio-Email-Event-Webhook-Signature",
    "X-Twilio-Email-Event-Webhook-Timestamp",
    "X-Livra-Sandbox-Signature",
)


@csrf_exempt
def provider_webhook(request, provider: str, store_slug: str, kind: str):
    try:
        impl = get_provider(provider)
    except LookupError:
        return JsonResponse({"detail": "Unknown provider."}, status=404)
    store = Store.objects.filter(slug=store_slug).first()
    if store is None:
        return JsonResponse({"detail": "Unknown store."}, status=404)
    configs = [
        ProviderConfig(row.provider, row.sender, row.credentials_env_prefix)
        for row in ChannelProvider.objects.filter(store=store, provider=provider).order_by("id")
    ]
    if not configs:
        return JsonResponse({"detail": "This store does not use this provider."}, status=404)

    if request.method == "GET" and hasattr(impl, "challenge"):
        handshake = impl.challenge(request, configs[0])
        if handshake is None or handshake.status_code >= 400:
            return JsonResponse({"detail": "Wrong mode or verify token."}, status=403)
        return handshake
    if request.method != "POST":
        answer = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
        answer["Allow"] = "POST"
        return answer
    # A store may use one provider on two channels with two accounts: any of its rows may sign.
    if not any(impl.verify(request, config) for config in configs):
        logger.warning(
            "provider webhook refused: bad signature provider=%s store=%s kind=%s", provider, store_slug, kind
        )
        return JsonResponse({"detail": "Bad signature."}, status=403)

    webhook = _store_raw(request, provider, kind, store)
    if webhook is not None:
        _apply(webhook, impl, store, request)
    return impl.acknowledge(kind) if hasattr(impl, "acknowledge") else HttpResponse(status=200)


def _store_raw(request, provider: str, kind: str, store: Store) -> ProviderWebhook | None:
    """Keep the request as it came; None when this exact body was already received."""
    body = request.body
    try:
        with transaction.atomic():
            return ProviderWebhook.objects.create(
                provider=provider,
                kind=kind,
                store=store,
                dedup_key=f"{kind}:{hashlib.sha256(body).hexdigest()}",
                headers={h: request.headers[h] for h in KEPT_HEADERS if h in request.headers},
                # PostgreSQL's text holds no NUL: kept as U+FFFD, like bytes that are not UTF-8.
                body=body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
            )
    except IntegrityError:
        return None  # a redelivery: answered 200, not applied twice


def _apply(webhook: ProviderWebhook, impl, store, request) -> None:
    unknown: list[str] = []
    try:
        # Meta posts statuses and customer messages to one callback URL: read both there.
        both = getattr(impl, "one_callback_url", False)
        if webhook.kind == ProviderWebhook.Kind.STATUS or both:
            for update in impl.parse_status(request):
                if message_apply_status(webhook.provider, update) is None:
                    unknown.append(update.provider_message_id)
        if webhook.kind == ProviderWebhook.Kind.INBOUND or both:
            for reply in impl.parse_inbound(request):
                inbound_reply_handle(store, webhook.provider, reply, webhook=webhook)
    except Exception as exc:  # keep the row, flag it, never lose the request
        logger.exception("provider webhook could not be applied webhook_id=%s", webhook.pk)
        webhook.flagged, webhook.flag_reason = True, f"could not apply: {type(exc).__name__}: {exc}"[:300]
    if unknown:
        webhook.flagged = True
        webhook.flag_reason = f"unknown message id(s): {', '.join(unknown)}"[:300]
    webhook.processed_at = timezone.now()
    webhook.save(update_fields=["flagged", "flag_reason", "processed_at"])
