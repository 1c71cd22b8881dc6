"""The sandbox provider's side of the wire: its delivery receipts and its customers' replies.

Celery's autodiscovery imports only tasks.py: messaging/tasks.py imports this module so that
workers register these tasks.
"""

import logging

import requests
from celery import shared_task
from django.conf import settings
from django.urls import reverse

from messaging.providers import StatusUpdate
from messaging.providers.sandbox import SIGNATURE_HEADER, sandbox_signature
from messaging.services.receipts import message_apply_status

logger = logging.getLogger(__name__)
REPLY_POST_TIMEOUT = 10  # seconds


@shared_task(name="messaging.sandbox_receipt")
def sandbox_receipt_task(message_id: int, provider_message_id: str, status: str) -> None:
    """Report ``status`` for a sandbox message, as a provider's delivery receipt would.

    It carries our message id too (as SendGrid's custom_args do), so it is applied even when it
    overtakes the send task's record of the provider id: eager Celery runs it at once.
    """
    update = StatusUpdate(provider_message_id, status, correlation={"message_id": str(message_id)})
    if message_apply_status("sandbox", update) is None:
        logger.warning("sandbox receipt for no message message_id=%s status=%s", message_id, status)


@shared_task(name="messaging.sandbox_reply_post")
def sandbox_reply_post_task(store_slug: str, body: str) -> int:
    """Post a demo customer's reply to the sandbox's inbound webhook, signed like a provider would.

    A real HTTP request to ``LIVRA_PUBLIC_URL``, so the reply takes the same path as a Twilio or
    Meta one (signature check, raw storage, dedup, parsing). It runs in the worker rather than in
    the page's request: a single-worker web server cannot answer a request to itself.
    """
    path = reverse("messaging:provider-inbound", args=["sandbox", store_slug])
    url = f"{settings.LIVRA_PUBLIC_URL.rstrip('/')}{path}"
    raw = body.encode()
    response = requests.post(
        url,
        data=raw,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sandbox_signature(raw)},
        timeout=REPLY_POST_TIMEOUT,
    )
    if response.status_code >= 300:
        logger.warning("sandbox reply refused store=%s http_status=%s", store_slug, response.status_code)
    return response.status_code
