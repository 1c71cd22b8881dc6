"""Twilio Programmable Messaging: SMS and WhatsApp through the official SDK.

Credentials come from the store's environment prefix (``<PREFIX>_ACCOUNT_SID``,
``<PREFIX>_AUTH_TOKEN``, optionally ``<PREFIX>_API_KEY_SID`` + ``<PREFIX>_API_KEY_SECRET``, which
Twilio recommends for the REST calls). ``<PREFIX>_BASE_URL`` sends every ``*.twilio.com`` request to
another host (a loopback fake in tests), ``<PREFIX>_TIMEOUT_SECONDS`` bounds each call (10 s).

Webhooks: each message carries its own StatusCallback URL; the number's (or Messaging Service's)
inbound webhook must be set in Twilio's console to
``<LIVRA_PUBLIC_URL>/webhooks/messaging/twilio/<store-slug>/inbound/`` (HTTP POST). Both are signed
with the Auth Token and checked against that public URL.

Wire contract: /work/shared/reference/providers.md §0 and §1.
"""

import email.utils
import hmac
import json
import logging
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlparse

import requests
import urllib3.exceptions
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator, add_port, remove_port
from twilio.rest import Client

from messaging.models import Channel
from messaging.providers import (
    ErrorKind,
    InboundReply,
    OutboundMessage,
    ProviderConfig,
    ProviderError,
    SendResult,
    StatusUpdate,
    register,
)

logger = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
DEFAULT_TIMEOUT_SECONDS = 10.0
WHATSAPP_PREFIX = "whatsapp:"
SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# Twilio error code → what the outbox does about it (providers.md §0 and §1.7). Codes not listed
# are judged by their HTTP status in ``error_kind_for``.
ERROR_KINDS: dict[int, ErrorKind] = {
    21211: ErrorKind.INVALID_RECIPIENT,  # 'To' is not a valid phone number
    21614: ErrorKind.INVALID_RECIPIENT,  # 'To' is not a mobile number (landline or invalid)
    21635: ErrorKind.INVALID_RECIPIENT,  # 'To' cannot be a landline
    30006: ErrorKind.INVALID_RECIPIENT,  # landline or unreachable carrier: resending cannot help
    21610: ErrorKind.OPTED_OUT,  # the recipient replied STOP; blocked until they send START
    63014: ErrorKind.OPTED_OUT,  # the WhatsApp user blocked the sender or removed consent
    63016: ErrorKind.WINDOW_CLOSED,  # outside the WhatsApp 24 h window: only a template may go
    20429: ErrorKind.RETRYABLE,  # too many concurrent requests, "always safe to retry"
    30003: ErrorKind.RETRYABLE,  # handset unreachable, often switched off for a while
    63018: ErrorKind.RETRYABLE,  # WhatsApp channel rate limit
    14107: ErrorKind.RETRYABLE,  # reply-loop guard (30 replies in 30 s)
    21608: ErrorKind.PERMANENT,  # trial account / no compliance profile: configuration
    20003: ErrorKind.PERMANENT,  # authentication failed: configuration
}

# Twilio's MessageStatus → ours. Statuses before "sent" (queued, sending, accepted, scheduled)
# and the inbound ones tell the outbox nothing it does not know, so they are left out.
STATUS_MAP = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "undeliverable",
    "failed": "failed",
    "canceled": "failed",
}

_E164_IN_TEXT = re.compile(r"\+\d{6,15}")
_TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]+\.twilio\.com", re.IGNORECASE)


def error_kind_for(code: int | None, http_status: int | None) -> ErrorKind:
    if code in ERROR_KINDS:
        return ERROR_KINDS[code]
    if http_status == 429 or (http_status or 0) >= 500:
        return ErrorKind.RETRYABLE
    return ErrorKind.PERMANENT


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (delta-seconds or HTTP-date) in seconds; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _redacted(text: str) -> str:
    # Twilio's error messages quote the number ("The 'To' number +212… is not valid"); the text is
    # stored on the message and may reach logs, which must not carry phone numbers.
    return _E164_IN_TEXT.sub("+…", text or "")


# --- HTTP ------------------------------------------------------------------------------------
class LivraTwilioHttpClient(TwilioHttpClient):
    """The SDK's client, optionally aimed at another host, remembering the last response's headers.

    ``TwilioRestException`` carries no headers, so a 429's Retry-After is read from here. One
    instance serves one thread (see ``_client``), so "the last response" is this call's.
    """

    def __init__(self, base_url: str | None, timeout: float):
        # max_retries=0: requests never resends by itself; a resend could text the customer twice.
        super().__init__(timeout=timeout, max_retries=0)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.last_response_headers: Mapping[str, str] = {}

    def request(self, method, url, *args, **kwargs):
        self.last_response_headers = {}
        if self.base_url:
            # api., messaging., content., and edge hosts (api.dublin.ie1.twilio.com) alike.
            url = _TWILIO_HOST.sub(self.base_url, url)
        response = super().request(method, url, *args, **kwargs)
        # requests' case-insensitive mapping: "Retry-After" and "retry-after" are the same header.
        self.last_response_headers = response.headers or {}
        return response

    # The SDK logs every URL (with the Account SID) and header at INFO; one quiet line is enough.
    def log_request(self, kwargs) -> None:
        logger.debug("twilio request method=%s", kwargs.get("method"))

    def log_response(self, status_code, response) -> None:
        logger.debug("twilio response status=%s", status_code)


_clients = threading.local()


def _optional(config: ProviderConfig, name: str) -> str:
    try:
        return config.credential(name)
    except ImproperlyConfigured:
        return ""


def _timeout_seconds(config: ProviderConfig) -> float:
    value = _optional(config, "TIMEOUT_SECONDS")
    try:
        timeout = float(value) if value else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        timeout = 0.0
    if timeout <= 0:
        raise ImproperlyConfigured(
            f"{config.provider}: {config.env_prefix}_TIMEOUT_SECONDS is not a positive number"
        )
    return timeout


def _client(config: ProviderConfig) -> tuple[Client, LivraTwilioHttpClient]:
    """A client per thread and per set of settings: keeps connections alive, shares no state."""
    account_sid = config.credential("ACCOUNT_SID")
    api_key, api_secret = _optional(config, "API_KEY_SID"), _optional(config, "API_KEY_SECRET")
    username, password = (api_key, api_secret) if api_key and api_secret else (account_sid, None)
    if password is None:
        password = config.credential("AUTH_TOKEN")
    base_url = config.base_url(TWILIO_API)
    timeout = _timeout_seconds(config)
    edge, region = _optional(config, "EDGE"), _optional(config, "REGION")
    key = (account_sid, username, password, base_url, timeout, edge, region)
    cache = getattr(_clients, "by_key", None)
    if cache is None:
        cache = _clients.by_key = {}
    if key not in cache:
        http_client = LivraTwilioHttpClient(base_url if base_url != TWILIO_API else None, timeout)
        client = Client(
            username,
            password,
            account_sid=account_sid,
            http_client=http_client,
            # The store's prefix holds its settings; the process-wide TWILIO_* variables must not
            # leak in (a non-empty mapping, or the SDK falls back to os.environ).
            environment={"TWILIO_EDGE": edge, "TWILIO_REGION": region},
        )
        cache[key] = (client, http_client)
    return cache[key]


# --- Provider --------------------------------------------------------------------------------
def _whatsapp_address(number: str) -> str:
    return number if number.startswith(WHATSAPP_PREFIX) else f"{WHATSAPP_PREFIX}{number}"


def message_fields(outbound: OutboundMessage) -> dict:
    """The SDK's keyword arguments for one message (no I/O: what goes on the wire is decided here)."""
    sender = outbound.sender
    whatsapp = outbound.channel == Channel.WHATSAPP
    fields: dict = {"to": _whatsapp_address(outbound.to) if whatsapp else outbound.to}
    if sender.startswith("MG"):
        fields["messaging_service_sid"] = sender  # a Messaging Service picks the number itself
    else:
        fields["from_"] = _whatsapp_address(sender) if whatsapp else sender
    template = outbound.template
    if whatsapp and template is not None and template.twilio_content_sid:
        # An approved Content template: the only thing WhatsApp accepts outside the 24 h window.
        fields["content_sid"] = template.twilio_content_sid
        if template.body_parameters:
            variables = {str(n): value for n, value in enumerate(template.body_parameters, start=1)}
            fields["content_variables"] = json.dumps(variables, ensure_ascii=False)
    else:
        fields["body"] = outbound.body
    if outbound.status_callback_url:
        fields["status_callback"] = outbound.status_callback_url
    return fields


def _transport_error(exc: requests.RequestException) -> ProviderError:
    """Connection failures before anything was sent are retried; anything later is UNKNOWN."""
    nothing_sent = isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError)
    if not nothing_sent and isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        nothing_sent = isinstance(reason, urllib3.exceptions.NewConnectionError)
    if nothing_sent:
        return ProviderError(ErrorKind.RETRYABLE, "connect", type(exc).__name__)
    # A read timeout or a dropped connection: Twilio may have queued the message already.
    return ProviderError(ErrorKind.UNKNOWN, "no_answer", type(exc).__name__)


class TwilioProvider:
    name = "twilio"
    channels = frozenset({Channel.SMS, Channel.WHATSAPP})

    def send(self, outbound: OutboundMessage, config: ProviderConfig) -> SendResult:
        try:
            client, http_client = _client(config)
        except ImproperlyConfigured as exc:
            # Retrying cannot conjure a credential: fail now and let the next channel try.
            raise ProviderError(ErrorKind.PERMANENT, "config", str(exc)) from None
        try:
            message = client.messages.create(**message_fields(outbound))
        except (TwilioRestException, TwilioServiceException) as exc:
            code = exc.code if isinstance(exc.code, int) else None
            kind = error_kind_for(code, exc.status)
            retry_after = None
            if kind == ErrorKind.RETRYABLE:
                retry_after = retry_after_seconds(http_client.last_response_headers.get("Retry-After"))
            text = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "")
            raise ProviderError(kind, str(code or exc.status), _redacted(str(text)), retry_after) from None
        except requests.RequestException as exc:
            raise _transport_error(exc) from None
        except TwilioException as exc:  # e.g. an unreadable 2xx body: the message may have gone
            raise ProviderError(ErrorKind.UNKNOWN, "bad_response", _redacted(str(exc))) from None
        return SendResult(provider_message_id=message.sid)

    def verify(self, request, config: ProviderConfig) -> bool:
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature:
            return False
        try:
            token = config.credential("AUTH_TOKEN")
        except ImproperlyConfigured as exc:
            logger.error("twilio webhook cannot be verified: %s", exc)  # names the variable only
            return False
        # Twilio signs the URL it called. Behind a proxy or load balancer Django sees the internal
        # host (request.build_absolute_uri() would give http://web:8000/...), so the public URL is
        # rebuilt from the same setting that made the StatusCallback URL we gave Twilio.
        url = settings.LIVRA_PUBLIC_URL.rstrip("/") + request.get_full_path()
        validator = RequestValidator(token)
        # Like RequestValidator.validate (with and without the port: Twilio is inconsistent about
        # it), but compared with hmac.compare_digest.
        candidates = {remove_port(urlparse(url)), add_port(urlparse(url))}
        given = signature.encode()
        matches = [
            hmac.compare_digest(validator.compute_signature(candidate, request.POST).encode(), given)
            for candidate in candidates
        ]
        return any(matches)

    def parse_status(self, request) -> list[StatusUpdate]:
        data = request.POST
        sid, twilio_status = data.get("MessageSid", ""), data.get("MessageStatus", "").lower()
        status = STATUS_MAP.get(twilio_status)
        if not sid or status is None:
            return []
        raw_code = data.get("ErrorCode", "")
        code = int(raw_code) if raw_code.isdigit() else None
        return [
            StatusUpdate(
                provider_message_id=sid,
                status=status,
                error_code=raw_code,
                error_text=_redacted(data.get("ErrorMessage", "")),
                error_kind=ERROR_KINDS.get(code, "") if code else "",
                # Livra's own id, from the StatusCallback URL it gave this message.
                correlation={"message_id": request.GET.get("message_id", "")},
            )
        ]

    def parse_inbound(self, request) -> list[InboundReply]:
        data = request.POST
        sender = data.get("From", "")
        if not sender:
            return []
        whatsapp = sender.startswith(WHATSAPP_PREFIX)
        return [
            InboundReply(
                channel=Channel.WHATSAPP if whatsapp else Channel.SMS,
                sender=sender.removeprefix(WHATSAPP_PREFIX),
                provider_message_id=data.get("MessageSid", "") or data.get("SmsMessageSid", ""),
                # A quick-reply tap carries its title in Body too; ButtonText covers it when not.
                text=data.get("Body", "") or data.get("ButtonText", ""),
                # WhatsApp quick replies (field names unverified on Twilio's page: providers.md §1.5).
                button_payload=data.get("ButtonPayload", ""),
                in_reply_to_provider_id=data.get("OriginalRepliedMessageSid", ""),
                # Set when Advanced Opt-Out classified the keyword (STOP, START, HELP).
                opt_out_type=data.get("OptOutType", ""),
            )
        ]

    def acknowledge(self, kind: str) -> HttpResponse:
        if kind == "inbound":
            # Twilio wants TwiML back; an empty Response means "no automatic reply".
            return HttpResponse(EMPTY_TWIML, content_type="text/xml")
        return HttpResponse(status=200)


register(TwilioProvider())
