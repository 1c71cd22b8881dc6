"""Messaging providers: one small interface, registered by name.

A provider turns an ``OutboundMessage`` into one API call and answers with a ``SendResult`` or
raises ``ProviderError`` whose ``kind`` is one of a small vocabulary the outbox acts on. Each
module keeps its own table from the provider's error codes to that vocabulary. Webhooks are
verified and parsed by the same module (``verify``, ``parse_status``, ``parse_inbound``).
"""

import os
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"  # try the same channel again later
    PERMANENT = "permanent"  # this message will never go on this channel as it is
    OPTED_OUT = "opted_out"  # the customer said stop: record it and never retry
    INVALID_RECIPIENT = "invalid_recipient"  # bad number / address / not on this channel
    WINDOW_CLOSED = "window_closed"  # WhatsApp 24 h window: only a template may go
    UNKNOWN = "unknown"  # the request went out but no answer came back


class ProviderError(Exception):
    def __init__(self, kind: ErrorKind, code: str = "", text: str = "", retry_after: float | None = None):
        super().__init__(f"{kind}: {code} {text}".strip())
        self.kind = ErrorKind(kind)
        self.code = str(code or "")
        self.text = text
        self.retry_after = retry_after


@dataclass(frozen=True)
class TemplateRef:
    """What a provider needs to send a pre-approved template instead of free text."""

    whatsapp_name: str = ""
    whatsapp_language: str = ""
    body_parameters: tuple[str, ...] = ()  # rendered values, in order
    quick_replies: tuple[dict, ...] = ()  # [{"id": ..., "title": ...}]
    twilio_content_sid: str = ""
    sendgrid_template_id: str = ""
    data: dict = field(default_factory=dict)  # every placeholder's rendered value


@dataclass(frozen=True)
class OutboundMessage:
    message_id: int
    channel: str
    to: str  # E.164 for phones, an address for e-mail
    sender: str
    body: str
    subject: str = ""
    template: TemplateRef | None = None
    reply_buttons: tuple[dict, ...] = ()  # interactive buttons, only inside the WhatsApp window
    window_open: bool = False  # the customer wrote on WhatsApp in the last 24 h: free text may go
    correlation: dict = field(default_factory=dict)  # string ids echoed back in receipts
    status_callback_url: str = ""


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str


@dataclass(frozen=True)
class StatusUpdate:
    provider_message_id: str
    status: str  # sent | delivered | read | failed | undeliverable
    occurred_at: datetime | None = None
    error_code: str = ""
    error_text: str = ""
    error_kind: str = ""  # an ErrorKind when the provider's code says more than "failed"
    correlation: dict = field(default_factory=dict)


@dataclass(frozen=True)
class InboundReply:
    channel: str  # whatsapp | sms | email
    sender: str  # E.164 phone or e-mail address
    provider_message_id: str
    text: str = ""
    button_payload: str = ""
    in_reply_to_provider_id: str = ""  # the message that carried the button, if known
    opt_out_type: str = ""  # provider's own classification, e.g. Twilio's OptOutType


@dataclass(frozen=True)
class ProviderConfig:
    """A store's settings for one provider. Secrets are read from the environment on use."""

    provider: str
    sender: str = ""
    env_prefix: str = ""

    def credential(self, name: str) -> str:
        key = f"{self.env_prefix}_{name}" if self.env_prefix else name
        value = os.environ.get(key, "")
        if not value:
            # Name the variable, never a value.
            raise ImproperlyConfigured(f"{self.provider}: environment variable {key} is not set")
        return value

    def base_url(self, default: str) -> str:
        """The API's base URL; ``<PREFIX>_BASE_URL`` points it elsewhere (tests use a loopback fake)."""
        key = f"{self.env_prefix}_BASE_URL" if self.env_prefix else ""
        return (os.environ.get(key) if key else None) or default


class Provider(Protocol):
    name: str
    channels: frozenset[str]

    def send(self, outbound: OutboundMessage, config: ProviderConfig) -> SendResult: ...

    def verify(self, request, config: ProviderConfig) -> bool: ...

    def parse_status(self, request) -> list[StatusUpdate]: ...

    def parse_inbound(self, request) -> list[InboundReply]: ...

    # Optional:
    #   challenge(request, config) -> HttpResponse | None   GET handshakes (Meta's hub.challenge)
    #   acknowledge(kind) -> HttpResponse                   the body the provider expects back
    #   one_callback_url = True                             statuses and replies share one URL (Meta)


_REGISTRY: dict[str, Provider] = {}
_built_ins_loaded = False
_BUILT_IN = ("sandbox", "twilio", "whatsapp_cloud", "sendgrid", "smtp")


def register(provider: Provider) -> Provider:
    _REGISTRY[provider.name] = provider
    return provider


def _load_built_ins() -> None:
    """Import every built-in provider module once, whatever was imported before."""
    global _built_ins_loaded
    if _built_ins_loaded:
        return
    import importlib

    for module in _BUILT_IN:
        importlib.import_module(f"messaging.providers.{module}")
    _built_ins_loaded = True


def get_provider(name: str) -> Provider:
    _load_built_ins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no messaging provider registered as {name!r}") from None


def provider_names() -> list[str]:
    _load_built_ins()
    return sorted(_REGISTRY)
