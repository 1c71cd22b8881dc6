"""Plain SMTP e-mail through Django's SMTP backend, for stores with their own mail server.

Settings (environment, prefix from the store's ChannelProvider row, e.g. LIVRA_SMTP):
``<PREFIX>_HOST`` (required), ``<PREFIX>_PORT`` (default 587, or 465 with SSL), ``<PREFIX>_USER`` and
``<PREFIX>_PASSWORD`` (both or no login), ``<PREFIX>_USE_TLS`` (STARTTLS, default true),
``<PREFIX>_USE_SSL`` (implicit TLS, default false) and ``<PREFIX>_TIMEOUT`` (seconds, default 10).
The ChannelProvider's sender is the From address.

SMTP has no delivery receipts: a message accepted by the server stays "sent". Our provider id is
the Message-ID header we set, so a bounce that reaches the store's mailbox can be traced by hand.
"""

import contextlib
import smtplib
from email.utils import make_msgid, parseaddr

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend
from django.core.validators import validate_email

from messaging.models import Channel
from messaging.providers import (
    ErrorKind,
    OutboundMessage,
    ProviderConfig,
    ProviderError,
    SendResult,
    register,
)

BACKEND = "messaging.providers.smtp.DataAwareEmailBackend"
DEFAULT_TIMEOUT_SECONDS = 10.0
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
MESSAGE_ID_HEADER = "X-Livra-Message-Id"


class _DataAware:
    """Remembers that DATA went out: after it, a lost reply may mean the server took the mail."""

    data_started = False

    def data(self, msg):
        self.data_started = True
        return super().data(msg)


class _DataAwareSMTP(_DataAware, smtplib.SMTP):
    pass


class _DataAwareSMTPSSL(_DataAware, smtplib.SMTP_SSL):
    pass


class DataAwareEmailBackend(EmailBackend):
    """Django's SMTP backend, with connections that tell "never sent" from "sent, no answer"."""

    @property
    def connection_class(self):
        return _DataAwareSMTPSSL if self.use_ssl else _DataAwareSMTP


def _setting(config: ProviderConfig, name: str, default: str) -> str:
    try:
        return config.credential(name)
    except ImproperlyConfigured:
        return default


def _flag(config: ProviderConfig, name: str, default: bool) -> bool:
    return _setting(config, name, "true" if default else "false").strip().lower() in TRUE_WORDS


def _connection(config: ProviderConfig) -> DataAwareEmailBackend:
    use_ssl = _flag(config, "USE_SSL", False)
    return get_connection(
        BACKEND,
        fail_silently=False,
        host=config.credential("HOST"),
        port=int(_setting(config, "PORT", "465" if use_ssl else "587")),
        username=_setting(config, "USER", ""),
        password=_setting(config, "PASSWORD", ""),
        use_tls=not use_ssl and _flag(config, "USE_TLS", True),
        use_ssl=use_ssl,
        timeout=float(_setting(config, "TIMEOUT", str(DEFAULT_TIMEOUT_SECONDS))),
    )


def build_email(outbound: OutboundMessage, sender: str, message_id_header: str) -> EmailMessage:
    return EmailMessage(
        subject=outbound.subject,
        body=outbound.body,
        from_email=sender,
        to=[outbound.to],
        headers={"Message-ID": message_id_header, MESSAGE_ID_HEADER: str(outbound.message_id)},
    )


class SMTPProvider:
    name = "smtp"
    channels = frozenset({Channel.EMAIL})

    def send(self, outbound: OutboundMessage, config: ProviderConfig) -> SendResult:
        try:
            validate_email(outbound.to)
        except ValidationError:
            raise ProviderError(ErrorKind.INVALID_RECIPIENT, "bad_address", "not an e-mail address") from None
        sender = config.sender or outbound.sender
        domain = parseaddr(sender)[1].rpartition("@")[2] or None
        message_id_header = make_msgid(domain=domain)
        email = build_email(outbound, sender, message_id_header)
        connection = _connection(config)
        try:
            _open(connection)
            _deliver(connection, email)
        finally:
            # A failing QUIT after the server took the mail must not turn "sent" into a retry.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                connection.close()
        return SendResult(provider_message_id=message_id_header)

    def verify(self, request, config: ProviderConfig) -> bool:
        return False  # SMTP has no webhooks: nothing may post as this provider

    def parse_status(self, request) -> list:
        return []

    def parse_inbound(self, request) -> list:
        return []


def _open(connection: DataAwareEmailBackend) -> None:
    """Connect, STARTTLS and log in. Nothing has been sent if this fails."""
    try:
        connection.open()
    except smtplib.SMTPAuthenticationError as exc:
        raise ProviderError(ErrorKind.PERMANENT, str(exc.smtp_code), "login refused") from None
    except smtplib.SMTPNotSupportedError as exc:  # e.g. STARTTLS asked of a server without it
        raise ProviderError(ErrorKind.PERMANENT, "not_supported", str(exc)) from None
    except smtplib.SMTPResponseException as exc:  # e.g. a 421 greeting: busy, come back later
        raise _reply_error(exc.smtp_code, exc.smtp_error, ErrorKind.PERMANENT) from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, unreachable, timed out, TLS failed
        raise ProviderError(ErrorKind.RETRYABLE, "connection_error", type(exc).__name__) from None


def _deliver(connection: DataAwareEmailBackend, email: EmailMessage) -> None:
    smtp = connection.connection
    try:
        sent = connection.send_messages([email])
    except smtplib.SMTPRecipientsRefused as exc:
        # {address: (code, reply)}; one recipient, so the first reply is the answer.
        code, reply = next(iter(exc.recipients.values()), (550, b""))
        raise _reply_error(code, reply, ErrorKind.INVALID_RECIPIENT) from None
    except smtplib.SMTPResponseException as exc:  # sender refused, or DATA answered with an error
        raise _reply_error(exc.smtp_code, exc.smtp_error, ErrorKind.PERMANENT) from None
    except (smtplib.SMTPException, OSError) as exc:
        if getattr(smtp, "data_started", False):
            # The message may be on the server already: sending again could mail it twice.
            raise ProviderError(ErrorKind.UNKNOWN, "no_response", type(exc).__name__) from None
        raise ProviderError(ErrorKind.RETRYABLE, "connection_error", type(exc).__name__) from None
    except ValueError as exc:  # a header Django will not write (newline in the subject, bad From)
        raise ProviderError(ErrorKind.PERMANENT, "bad_message", str(exc)) from None
    if not sent:
        raise ProviderError(ErrorKind.INVALID_RECIPIENT, "no_recipient", "the message has no recipient")


def _reply_error(code: int, reply: bytes | str, permanent_kind: ErrorKind) -> ProviderError:
    """4xx: the server asks to try later; 5xx: it will not take this message."""
    text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else str(reply)
    kind = ErrorKind.RETRYABLE if 400 <= int(code) < 500 else permanent_kind
    return ProviderError(kind, str(code), text[:500])


register(SMTPProvider())
