"""SendGrid v3 e-mail: Mail Send through the official SDK, and the signed Event Webhook.

Credentials (environment, prefix from the store's ChannelProvider row, e.g. LIVRA_SENDGRID):
``<PREFIX>_API_KEY``, ``<PREFIX>_WEBHOOK_PUBLIC_KEY`` (the base64 key shown under Mail Settings →
Signed Event Webhook), optional ``<PREFIX>_BASE_URL`` (EU subusers: https://api.eu.sendgrid.com)
and ``<PREFIX>_TIMEOUT`` (seconds, default 10). The ChannelProvider's sender is the From address.

SendGrid answers 202 with an ``X-Message-Id`` header; that is our provider id. Each recipient's
events carry an ``sg_message_id`` that starts with it, plus our ``custom_args`` as top-level keys.
"""

import binascii
import http.client
import json
import logging
import time
from datetime import UTC, datetime
from urllib.error import URLError

from django.core.exceptions import ImproperlyConfigured
from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from sendgrid.helpers.mail import CustomArg, Mail, To

from messaging.models import Channel, Message
from messaging.providers import (
    ErrorKind,
    OutboundMessage,
    ProviderConfig,
    ProviderError,
    SendResult,
    StatusUpdate,
    register,
)
from orders import untrusted_json

logger = logging.getLogger(__name__)

DEFAULT_HOST = "https://api.sendgrid.com"
DEFAULT_TIMEOUT_SECONDS = 10.0

# HTTP status on Mail Send → what the outbox does. Anything else: 5xx retry, 4xx permanent.
SEND_ERROR_KINDS = {
    400: ErrorKind.PERMANENT,  # or INVALID_RECIPIENT when the error names a recipient field
    401: ErrorKind.PERMANENT,  # bad API key: configuration
    403: ErrorKind.PERMANENT,  # e.g. the From address is not a verified sender
    404: ErrorKind.PERMANENT,
    413: ErrorKind.PERMANENT,  # payload too large: the same message will never fit
    429: ErrorKind.RETRYABLE,  # rate limited; X-RateLimit-Reset says when
    500: ErrorKind.RETRYABLE,
    502: ErrorKind.RETRYABLE,
    503: ErrorKind.RETRYABLE,
    504: ErrorKind.RETRYABLE,
}
RECIPIENT_FIELD_PREFIXES = ("personalizations.",)
RECIPIENT_FIELD_PARTS = (".to", ".cc", ".bcc")

# Event Webhook: event → (status, error kind). Events not listed change nothing:
# processed (we already say "sent"), deferred (SendGrid keeps retrying), group_resubscribe.
EVENT_STATUS = {
    "delivered": (Message.Status.DELIVERED, ""),
    "open": (Message.Status.READ, ""),
    "click": (Message.Status.READ, ""),  # a click needs the mail opened
    "spamreport": (Message.Status.UNDELIVERABLE, ErrorKind.OPTED_OUT),
    "unsubscribe": (Message.Status.UNDELIVERABLE, ErrorKind.OPTED_OUT),
    "group_unsubscribe": (Message.Status.UNDELIVERABLE, ErrorKind.OPTED_OUT),
}
# ``dropped`` reasons: SendGrid refused to even try, because of its suppression lists.
DROPPED_REASON_KINDS = {
    "invalid": ErrorKind.INVALID_RECIPIENT,
    "bounced address": ErrorKind.INVALID_RECIPIENT,
    "unsubscribed address": ErrorKind.OPTED_OUT,
    "spam reporting address": ErrorKind.OPTED_OUT,
}


def _setting(config: ProviderConfig, name: str, default: str) -> str:
    """An optional, non-secret setting from the environment."""
    try:
        return config.credential(name)
    except ImproperlyConfigured:
        return default


def _timeout(config: ProviderConfig) -> float:
    return float(_setting(config, "TIMEOUT", str(DEFAULT_TIMEOUT_SECONDS)))


def build_mail(outbound: OutboundMessage, sender: str) -> Mail:
    """The Mail Send body: a dynamic template when the store has one, else subject and plain text."""
    # Set as is, not parsed: the SDK's parser drops a malformed address, and SendGrid's 400 on it
    # is what tells the outbox the customer's address is bad.
    recipient = To()
    recipient.email = outbound.to
    template = outbound.template
    if template is not None and template.sendgrid_template_id:
        mail = Mail(from_email=sender, to_emails=recipient)
        mail.template_id = template.sendgrid_template_id
        # JSON needs plain values; rendered placeholders are strings already, keep it that way.
        mail.dynamic_template_data = {key: str(value) for key, value in template.data.items()}
    else:
        mail = Mail(
            from_email=sender,
            to_emails=recipient,
            subject=outbound.subject,
            plain_text_content=outbound.body,
        )
    # SendGrid echoes custom_args in every event of this recipient; values must be strings.
    for key, value in outbound.correlation.items():
        mail.add_custom_arg(CustomArg(key, str(value), p=0))
    return mail


class SendGridProvider:
    name = "sendgrid"
    channels = frozenset({Channel.EMAIL})

    # --- sending ----------------------------------------------------------------------------
    def send(self, outbound: OutboundMessage, config: ProviderConfig) -> SendResult:
        client = SendGridAPIClient(
            api_key=config.credential("API_KEY"),
            # The SDK concatenates host + "/v3/...": a trailing slash would give "//v3".
            host=config.base_url(DEFAULT_HOST).rstrip("/"),
        )
        mail = build_mail(outbound, config.sender or outbound.sender)
        try:
            # ``send()`` takes no timeout; the same call with one, so a hung API cannot hang a worker.
            response = client.client.mail.send.post(request_body=mail.get(), timeout=_timeout(config))
        except http_errors.HTTPError as exc:
            raise _send_error(exc) from None
        except URLError as exc:
            # urllib wraps what fails before the request is written (refused, DNS, connect timeout).
            raise ProviderError(ErrorKind.RETRYABLE, "connection_error", str(exc.reason)) from None
        except (OSError, http.client.HTTPException) as exc:
            # Timed out or cut off while waiting for the answer: the request went out, and SendGrid
            # may have queued it. Sending again could mail the customer twice.
            raise ProviderError(ErrorKind.UNKNOWN, "no_response", type(exc).__name__) from None
        message_id = response.headers.get("X-Message-Id", "")
        if not message_id:
            # Accepted all the same; receipts still find the message through custom_args.
            logger.warning("sendgrid accepted without X-Message-Id message_id=%s", outbound.message_id)
        return SendResult(provider_message_id=message_id)

    # --- webhooks ---------------------------------------------------------------------------
    def verify(self, request, config: ProviderConfig) -> bool:
        """ECDSA P-256 over timestamp + raw body, with the key from the Signed Event Webhook settings."""
        signature = request.headers.get(EventWebhookHeader.SIGNATURE, "")
        timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP, "")
        if not signature or not timestamp:
            return False
        try:
            public_key = config.credential("WEBHOOK_PUBLIC_KEY")
        except ImproperlyConfigured as exc:
            logger.error("sendgrid webhook cannot be verified: %s", exc)  # names the variable only
            return False
        try:
            verifier = EventWebhook(public_key)
            return verifier.verify_signature(request.body.decode("utf-8"), signature, timestamp)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            # An unreadable signature, or a key that is not a P-256 SubjectPublicKeyInfo.
            return False

    def parse_status(self, request) -> list[StatusUpdate]:
        events = untrusted_json.loads(request.body)
        if not isinstance(events, list):
            raise ValueError("a SendGrid event batch is a JSON array")
        updates = []
        for event in events:
            update = status_update_from_event(event)
            if update is not None:
                updates.append(update)
        return updates

    def parse_inbound(self, request) -> list:
        return []  # Inbound Parse is not set up: replies to e-mails go to the store's mailbox


def _send_error(exc: http_errors.HTTPError) -> ProviderError:
    status = int(exc.status_code)
    errors = _error_list(exc.body)
    text = "; ".join(str(error.get("message", "")) for error in errors)[:500] or str(exc.reason)
    code = str(status)
    if status == 429:
        return ProviderError(ErrorKind.RETRYABLE, code, text, retry_after=_seconds_until_reset(exc.headers))
    kind = SEND_ERROR_KINDS.get(status, ErrorKind.RETRYABLE if status >= 500 else ErrorKind.PERMANENT)
    if status == 400 and any(_names_a_recipient(error.get("field")) for error in errors):
        kind = ErrorKind.INVALID_RECIPIENT
    return ProviderError(kind, code, text)


def _error_list(body) -> list[dict]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    return [error for error in errors if isinstance(error, dict)] if isinstance(errors, list) else []


def _names_a_recipient(field) -> bool:
    # e.g. "personalizations.0.to.0.email": "Does not contain a valid address."
    if not isinstance(field, str) or not field.startswith(RECIPIENT_FIELD_PREFIXES):
        return False
    return any(part in field for part in RECIPIENT_FIELD_PARTS)


def _seconds_until_reset(headers) -> float | None:
    """X-RateLimit-Reset is the epoch second when the limit resets."""
    try:
        reset = float(headers.get("X-RateLimit-Reset"))
    except (TypeError, ValueError, AttributeError):
        return None
    return max(1.0, reset - time.time())


def status_update_from_event(event: dict) -> StatusUpdate | None:
    """One Event Webhook event as a status update; None for events that change nothing."""
    if not isinstance(event, dict):
        return None
    name = event.get("event")
    reason = str(event.get("reason") or "")
    error_code = ""
    if name in EVENT_STATUS:
        status, kind = EVENT_STATUS[name]
        error_code = name if kind else ""
        if name == "open" and event.get("sg_machine_open"):
            # Apple Mail Privacy Protection fetches every image: proof of delivery, not of reading.
            status = Message.Status.DELIVERED
    elif name == "bounce":
        if event.get("type") == "blocked":
            status, kind = Message.Status.FAILED, ErrorKind.PERMANENT
        else:
            status, kind = Message.Status.UNDELIVERABLE, ErrorKind.INVALID_RECIPIENT
        error_code = str(event.get("status") or name)
    elif name == "dropped":
        kind = DROPPED_REASON_KINDS.get(reason.strip().lower(), ErrorKind.PERMANENT)
        status = Message.Status.FAILED if kind == ErrorKind.PERMANENT else Message.Status.UNDELIVERABLE
        error_code = "dropped"
    else:
        return None
    correlation = {"message_id": str(event["message_id"])} if event.get("message_id") else {}
    return StatusUpdate(
        # sg_message_id is "<X-Message-Id>.<filter and recipient part>"; we stored the first part.
        provider_message_id=str(event.get("sg_message_id") or "").split(".", 1)[0],
        status=status,
        occurred_at=_occurred_at(event.get("timestamp")),
        error_code=error_code[:40],
        error_text=reason[:2000],
        error_kind=str(kind),
        correlation=correlation,
    )


def _occurred_at(timestamp) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


register(SendGridProvider())
