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


# A reply Livra did not take is tried again after 2, 4, 8, 16, 32 and 60 s: about two minutes,
# long enough for a web server that is restarting, short enough for someone watching the phone.
REPLY_RETRIES = 6
REPLY_BACKOFF_BASE = 2  # seconds
REPLY_BACKOFF_CAP = 60
# Answers worth trying again: Livra is down, overloaded or restarting. Any other 4xx is final.
RETRYABLE_STATUSES = {408, 425, 429}
REFUSAL_HINTS = {
    403: "the signature was refused: do the web server and the worker share SECRET_KEY?",
    404: "no such store there: does LIVRA_PUBLIC_URL point at this Livra?",
}


class ReplyNotDelivered(Exception):
    """Livra did not take a sandbox reply. The message says why, in words for the phone page
    (a URL and an HTTP status at most: never the reply or the customer)."""


def reply_retry_countdown(retries: int) -> int:
    """Seconds before attempt ``retries + 2``: exponential, capped."""
    return min(REPLY_BACKOFF_BASE * 2**retries, REPLY_BACKOFF_CAP)


def _why_not_delivered(url: str, exc: requests.RequestException) -> str:
    base = url.split("/webhooks/", 1)[0]
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
        return f"nothing answered at {base} (connection refused or host unreachable)"
    if isinstance(exc, requests.Timeout):
        return f"{base} did not answer within {REPLY_POST_TIMEOUT} s"
    return f"posting to {base} failed ({type(exc).__name__})"


@shared_task(name="messaging.sandbox_reply_post", bind=True, ignore_result=False, max_retries=REPLY_RETRIES)
def sandbox_reply_post_task(self, store_slug: str, body: str) -> int:
    """Post a demo customer's reply to the sandbox's inbound webhook, signed like a provider would.

    A real HTTP request to ``LIVRA_PUBLIC_URL``, so the reply takes the same path as a Twilio or
    Meta one (signature check, raw storage, dedup, parsing). It runs in the worker rather than in
    the page's request: a single-worker web server cannot answer a request to itself.

    Like a provider it tries again when Livra does not take the reply (no answer, 5xx, 429), with
    backoff; a refusal (403 bad signature, 404 no such store) is final. Its state and the reason
    are kept as the task's result, which the phone page shows under the reply. A repeat of the
    same reply is harmless: Livra deduplicates it.
    """
    path = reverse("messaging:provider-inbound", args=["sandbox", store_slug])
    url = f"{settings.LIVRA_PUBLIC_URL.rstrip('/')}{path}"
    raw = body.encode()
    try:
        response = requests.post(
            url,
            data=raw,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: sandbox_signature(raw)},
            timeout=REPLY_POST_TIMEOUT,
        )
    except requests.RequestException as exc:
        reason = _why_not_delivered(url, exc)
    else:
        status = response.status_code
        if status < 300:
            return status
        if status < 500 and status not in RETRYABLE_STATUSES:
            logger.warning("sandbox reply refused store=%s http_status=%s", store_slug, status)
            hint = REFUSAL_HINTS.get(status, "Livra will not take it as it is")
            raise ReplyNotDelivered(f"Livra refused it with HTTP {status}: {hint}")
        reason = f"Livra answered HTTP {status}"
    attempt = self.request.retries + 1
    if self.request.retries >= self.max_retries:
        logger.warning("sandbox reply not delivered store=%s attempts=%s", store_slug, attempt)
        raise ReplyNotDelivered(f"{reason}; gave up after {attempt} attempts")
    countdown = reply_retry_countdown(self.request.retries)
    logger.info(
        "sandbox reply not delivered yet store=%s attempt=%s retry_in=%s", store_slug, attempt, countdown
    )
    raise self.retry(
        exc=ReplyNotDelivered(
            f"{reason}; trying again in {countdown} s (attempt {attempt} of {self.max_retries + 1})"
        ),
        countdown=countdown,
    )
