"""Meta WhatsApp Cloud API: send templates, reply buttons or text; read signed statuses and replies.

Meta has no official Python SDK, so this is plain HTTP (``requests``) against the Graph API:
``POST {base}/{version}/{phone_number_id}/messages`` with a Bearer token. Environment variables,
under the store's ChannelProvider prefix (e.g. ``LIVRA_WA``):

- ``<PREFIX>_ACCESS_TOKEN``  system-user token with ``whatsapp_business_messaging``
- ``<PREFIX>_APP_SECRET``    signs every webhook POST (``X-Hub-Signature-256``)
- ``<PREFIX>_VERIFY_TOKEN``  the string Meta echoes in the GET subscription handshake
- ``<PREFIX>_API_VERSION``   optional, default ``v21.0``
- ``<PREFIX>_BASE_URL``      optional, default ``https://graph.facebook.com`` (tests: a loopback fake)

The ChannelProvider's ``sender`` is the WhatsApp phone number id (not the phone number).

Which message goes out: reply buttons (only set while the customer's 24 h window is open) → an
interactive button message; else an approved template when the store named one; else plain text,
which Meta only accepts inside the window, so with the window closed we refuse locally instead of
collecting Meta's 131047.
"""

import hashlib
import hmac
import logging
import os
import re
from datetime import UTC, datetime

import requests
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, HttpResponseForbidden
from urllib3.exceptions import MaxRetryError, NewConnectionError

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
from orders import untrusted_json

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
TIMEOUT = (5, 10)  # seconds: connect, read
MAX_REPLY_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_INTERACTIVE_BODY = 1024
MAX_TEXT_BODY = 4096
_API_VERSION = re.compile(r"^v\d+\.\d+$")
# Meta refuses template parameters with new lines, tabs or more than four spaces in a row.
_PARAMETER_WHITESPACE = re.compile(r"[\n\t]+| {5,}")

R, P = ErrorKind.RETRYABLE, ErrorKind.PERMANENT
# Graph error code → what the outbox does about it (providers.md §2.6).
ERROR_KINDS: dict[int, ErrorKind] = {
    # The recipient cannot get WhatsApp messages from us.
    131026: ErrorKind.INVALID_RECIPIENT,  # not a WhatsApp user, old app, terms not accepted
    131021: ErrorKind.INVALID_RECIPIENT,  # recipient is the sender
    131030: ErrorKind.INVALID_RECIPIENT,  # not in the allowed list (test numbers)
    137000: ErrorKind.INVALID_RECIPIENT,  # identity key mismatch
    131050: ErrorKind.OPTED_OUT,  # the user stopped marketing messages
    131047: ErrorKind.WINDOW_CLOSED,  # more than 24 h since the user last wrote: templates only
    # Policy: not now, and not by retrying soon; the next channel is better for an order update.
    131049: P,  # "healthy ecosystem": wait at least 24 h before resending
    131063: P,  # marketing templates disabled on the Cloud API
    # Template and parameters: the store's configuration must change.
    **dict.fromkeys((100, 131008, 131009, 131051, 132000, 132001, 132005, 132007, 132008), P),
    **dict.fromkeys((132012, 132015, 132016), P),
    # Account and auth: the store's configuration must change.
    **dict.fromkeys((0, 3, 10, 190, 368, 130497, 131031, 131042, 131045, 131057), P),
    # Throttling: back off and try again.
    **dict.fromkeys((4, 80007, 130429, 131048, 131056, 131064, 133016), R),
    # Transient server trouble.
    **dict.fromkeys((1, 2, 131000, 131016), R),
}
# Statuses we track; Meta also sends "played" (voice) and others that do not move a message.
STATUSES = {"sent", "delivered", "read", "failed"}
# A "failed" status whose code says the customer is unreachable here, not that something broke.
UNDELIVERABLE_KINDS = {ErrorKind.INVALID_RECIPIENT, ErrorKind.OPTED_OUT, ErrorKind.WINDOW_CLOSED}


def error_kind_for(code: int | None, http_status: int = 400, transient: bool = False) -> ErrorKind:
    if code is not None and code in ERROR_KINDS:
        return ERROR_KINDS[code]
    if code is not None and 200 <= code <= 299:
        return P  # permission errors
    if http_status >= 500 or http_status == 429 or transient:
        return R
    return P


def graph_version(config: ProviderConfig) -> str:
    key = f"{config.env_prefix}_API_VERSION" if config.env_prefix else "API_VERSION"
    version = os.environ.get(key) or DEFAULT_API_VERSION
    if not _API_VERSION.match(version):
        raise ImproperlyConfigured(f"{config.provider}: {key} must look like v21.0")
    return version


# --- building the request (pure) -------------------------------------------------------------
def request_body(outbound: OutboundMessage, *, window_open: bool) -> dict:
    """The JSON for ``outbound``; raises ProviderError(window_closed) when Meta would refuse it."""
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": outbound.to.lstrip("+"),
        # Echoed back in every status webhook for this message.
        "biz_opaque_callback_data": str(outbound.correlation.get("message_id", outbound.message_id)),
    }
    if outbound.reply_buttons:
        body["type"] = "interactive"
        body["interactive"] = _interactive(outbound)
    elif outbound.template is not None and outbound.template.whatsapp_name:
        body["type"] = "template"
        body["template"] = _template(outbound)
    elif window_open:
        body["type"] = "text"
        body["text"] = {"body": outbound.body[:MAX_TEXT_BODY], "preview_url": False}
    else:
        raise ProviderError(
            ErrorKind.WINDOW_CLOSED,
            "window_closed",
            "no approved WhatsApp template and the 24 h window is closed; not sent (Meta would say 131047)",
        )
    return body


def _interactive(outbound: OutboundMessage) -> dict:
    buttons = [
        {
            "type": "reply",
            "reply": {
                "id": str(button["id"])[:MAX_BUTTON_ID],
                "title": str(button["title"])[:MAX_BUTTON_TITLE],
            },
        }
        for button in outbound.reply_buttons[:MAX_REPLY_BUTTONS]
    ]
    return {
        "type": "button",
        "body": {"text": outbound.body[:MAX_INTERACTIVE_BODY]},
        "action": {"buttons": buttons},
    }


def _template(outbound: OutboundMessage) -> dict:
    template = outbound.template
    components = []
    if template.body_parameters:
        parameters = [
            {"type": "text", "text": _PARAMETER_WHITESPACE.sub(" ", value)}
            for value in template.body_parameters
        ]
        components.append({"type": "body", "parameters": parameters})
    order_id = outbound.correlation.get("order_id", "")
    for index, button in enumerate(template.quick_replies):
        # The payload comes back when the customer taps; the order id says which order they answer.
        payload = f"{button['id']}:{order_id}" if order_id else str(button["id"])
        components.append(
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": str(index),
                "parameters": [{"type": "payload", "payload": payload}],
            }
        )
    result = {"name": template.whatsapp_name, "language": {"code": template.whatsapp_language or "fr"}}
    if components:
        result["components"] = components
    return result


# --- reading the answer (pure) ---------------------------------------------------------------
def provider_error_from(response: requests.Response) -> ProviderError:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    error = error if isinstance(error, dict) else {}  # a proxy's HTML page, or no envelope at all
    code = error.get("code")
    code = code if isinstance(code, int) else None
    kind = error_kind_for(code, response.status_code, bool(error.get("is_transient")))
    details = (error.get("error_data") or {}).get("details") or ""
    text = " ".join(
        part for part in (error.get("message") or f"HTTP {response.status_code}", details) if part
    )
    subcode = error.get("error_subcode")
    if subcode:
        text = f"{text} (subcode {subcode})"
    return ProviderError(
        kind,
        str(code) if code is not None else f"http_{response.status_code}",
        text,
        retry_after=_retry_after(response) if kind == ErrorKind.RETRYABLE else None,
    )


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _occurred_at(timestamp) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _changes(request) -> list[dict]:
    """Every ``value`` of a ``messages`` change in a webhook body."""
    payload = untrusted_json.loads(request.body)
    values = []
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            if change.get("field") == "messages" and isinstance(change.get("value"), dict):
                values.append(change["value"])
    return values


class WhatsAppCloudProvider:
    name = "whatsapp_cloud"
    channels = frozenset({Channel.WHATSAPP})
    # Meta posts statuses and customer messages to one callback URL (see report for webhooks.py).
    one_callback_url = True

    def __init__(self, timeout: tuple[float, float] = TIMEOUT):
        self.timeout = timeout

    def send(self, outbound: OutboundMessage, config: ProviderConfig) -> SendResult:
        if not config.sender:
            raise ProviderError(ErrorKind.PERMANENT, "config", "no WhatsApp phone number id (sender) set")
        try:
            token = config.credential("ACCESS_TOKEN")
            url = f"{config.base_url(DEFAULT_BASE_URL).rstrip('/')}/{graph_version(config)}"
        except ImproperlyConfigured as exc:  # names the variable, never a value
            raise ProviderError(ErrorKind.PERMANENT, "config", str(exc)) from None
        body = request_body(outbound, window_open=outbound.window_open or bool(outbound.reply_buttons))
        try:
            response = requests.post(
                f"{url}/{config.sender}/messages",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout,
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise ProviderError(ErrorKind.RETRYABLE, "connect_timeout", "could not connect") from exc
        except requests.exceptions.Timeout as exc:
            # The request went out; Meta may have accepted it. Resending could message twice.
            raise ProviderError(ErrorKind.UNKNOWN, "read_timeout", "no answer in time") from exc
        except requests.exceptions.ConnectionError as exc:
            raise _connection_error(exc) from exc
        if response.status_code != 200:
            error = provider_error_from(response)
            logger.info(
                "whatsapp_cloud refused message_id=%s code=%s kind=%s fbtrace_id=%s",
                outbound.message_id,
                error.code,
                error.kind.value,
                response.headers.get("x-fb-trace-id", ""),
            )
            raise error
        try:
            return SendResult(provider_message_id=response.json()["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # Meta answered 200, so it most likely took the message: never resend blindly.
            raise ProviderError(ErrorKind.UNKNOWN, "bad_response", "accepted without a message id") from exc

    # --- webhooks ---
    def challenge(self, request, config: ProviderConfig):
        """Meta's subscription handshake: echo ``hub.challenge`` when the verify token matches."""
        try:
            expected = config.credential("VERIFY_TOKEN")
        except ImproperlyConfigured:
            logger.warning("whatsapp_cloud handshake refused: no verify token configured")
            return HttpResponseForbidden()
        given = request.GET.get("hub.verify_token", "")
        if request.GET.get("hub.mode") != "subscribe" or not hmac.compare_digest(
            given.encode(), expected.encode()
        ):
            logger.warning("whatsapp_cloud handshake refused: wrong mode or verify token")
            return HttpResponseForbidden()
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")

    def verify(self, request, config: ProviderConfig) -> bool:
        try:
            secret = config.credential("APP_SECRET")
        except ImproperlyConfigured:
            logger.warning("whatsapp_cloud webhook refused: no app secret configured")
            return False
        header = request.headers.get("X-Hub-Signature-256", "")
        if not header.startswith("sha256="):
            return False
        expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(header.removeprefix("sha256=").encode(), expected.encode())

    def parse_status(self, request) -> list[StatusUpdate]:
        updates = []
        for value in _changes(request):
            for status in value.get("statuses") or []:
                if status.get("status") not in STATUSES or not status.get("id"):
                    continue
                updates.append(_status_update(status))
        return updates

    def parse_inbound(self, request) -> list[InboundReply]:
        replies = []
        for value in _changes(request):
            for message in value.get("messages") or []:
                if message.get("from"):
                    replies.append(_inbound_reply(message))
        return replies


def _status_update(status: dict) -> StatusUpdate:
    correlation = {}
    if status.get("biz_opaque_callback_data"):
        correlation["message_id"] = str(status["biz_opaque_callback_data"])
    if status["status"] != "failed":
        return StatusUpdate(
            provider_message_id=status["id"],
            status=status["status"],
            occurred_at=_occurred_at(status.get("timestamp")),
            correlation=correlation,
        )
    error = (status.get("errors") or [{}])[0]
    code = error.get("code") if isinstance(error.get("code"), int) else None
    kind = error_kind_for(code)
    details = (error.get("error_data") or {}).get("details") or ""
    return StatusUpdate(
        provider_message_id=status["id"],
        status="undeliverable" if kind in UNDELIVERABLE_KINDS else "failed",
        occurred_at=_occurred_at(status.get("timestamp")),
        error_code=str(code) if code is not None else "",
        error_text=" ".join(
            part for part in (error.get("title") or error.get("message") or "", details) if part
        ),
        error_kind=kind.value,
        correlation=correlation,
    )


def _inbound_reply(message: dict) -> InboundReply:
    kind = message.get("type")
    text = button_payload = ""
    if kind == "text":
        text = (message.get("text") or {}).get("body", "")
    elif kind == "interactive":
        interactive = message.get("interactive") or {}
        chosen = interactive.get("button_reply") or interactive.get("list_reply") or {}
        button_payload, text = chosen.get("id", ""), chosen.get("title", "")
    elif kind == "button":  # a template's quick reply
        button = message.get("button") or {}
        button_payload, text = button.get("payload", ""), button.get("text", "")
    else:
        # Media, location, reactions…: an agent should see that the customer wrote, and it opens the window.
        caption = (message.get(kind) or {}).get("caption", "") if isinstance(message.get(kind), dict) else ""
        text = caption or f"[{kind or 'unknown'} message]"
    return InboundReply(
        channel=Channel.WHATSAPP,
        sender=f"+{message['from'].lstrip('+')}",
        provider_message_id=message.get("id", ""),
        text=text,
        button_payload=button_payload,
        in_reply_to_provider_id=(message.get("context") or {}).get("id", ""),
    )


def _connection_error(exc: requests.exceptions.ConnectionError) -> ProviderError:
    """Refused or unresolvable: nothing went out, so retry. Cut off mid-way: it may have gone out."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError):
        return ProviderError(ErrorKind.RETRYABLE, "connection_refused", "could not connect")
    if isinstance(exc, requests.exceptions.SSLError):
        return ProviderError(ErrorKind.RETRYABLE, "tls_error", "TLS handshake failed")
    return ProviderError(ErrorKind.UNKNOWN, "connection_lost", "connection lost after the request went out")


register(WhatsAppCloudProvider())
