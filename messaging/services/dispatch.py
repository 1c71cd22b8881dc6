"""Sending the outbox: claim, call the provider outside any transaction, record.

The drain claims up to ``BATCH_SIZE`` due messages in one short transaction (``FOR UPDATE SKIP
LOCKED``, so drains running side by side never take the same row), reads what rendering needs
once per batch, calls the providers on a small thread pool, and records the acceptances in one
more transaction. ``message_send`` is the same path for one message (a retry after its backoff).
Failures go through ``message_record_failure`` one by one: they are few, and each needs its own
decision (retry, fall back, opt out).

A full batch wakes another drain before sending, so other worker threads or processes take the
next batch while this one waits on the network.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging.models import (
    Channel,
    ChannelProvider,
    InboundMessage,
    Message,
    MessageAttempt,
    MessageStatusChange,
    MessageTemplate,
    MessagingSettings,
)
from messaging.providers import ErrorKind, OutboundMessage, ProviderConfig, ProviderError, get_provider
from messaging.services.outbox import (
    CLAIM_FIELDS,
    message_prepare_send,
    message_record_failure,
    messages_record_accepted,
)
from messaging.services.rendering import order_context, template_choose
from messaging.services.routing import messaging_settings_for
from messaging.services.wakeup import outbox_wake, outbox_wake_clear
from messaging.services.whatsapp_window import WINDOW
from orders.models import OrderEvent

logger = logging.getLogger(__name__)

# Every message of a batch is claimed for the same SENDING_LEASE (120 s): 50 calls on 8 threads,
# each bounded by its provider's timeout (10 s), end well inside it.
BATCH_SIZE = 50

_send_pool: ThreadPoolExecutor | None = None


@dataclass
class DrainResult:
    claimed: int = 0
    accepted: int = 0
    failed: int = 0
    refused: int = 0  # finished without a provider call (no consent any more, render failure…)


def outbox_drain(batch_size: int = BATCH_SIZE) -> DrainResult:
    """Send one batch of due messages; wake another drain when more may be waiting."""
    outbox_wake_clear()
    result, _ = _send(Message.objects.all(), batch_size, wake_when_full=True)
    if result.claimed:
        logger.info("outbox drained %s", result)
    return result


def message_send(message_id: int) -> Message | None:
    """Send one message if it is still queued and due (a retry's task); the message as it ends."""
    _, messages = _send(Message.objects.filter(pk=message_id), 1)
    return messages[0] if messages else None


def _send(candidates, limit: int, *, wake_when_full: bool = False) -> tuple[DrainResult, list[Message]]:
    """Claim up to ``limit`` of ``candidates`` that are queued and due, send them, record the
    answers; the counts and the messages sent (as recorded)."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            candidates.select_for_update(skip_locked=True, of=("self",))
            .select_related("notification", "order__store", "customer")
            .prefetch_related("customer__consents", "order__items")
            .filter(status=Message.Status.QUEUED, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "pk")[:limit]
        )
        lookups = BatchLookups(due, now)
        prepared = []
        for message in due:
            ready = message_prepare_send(message, now, lookups)
            if ready is not None:
                prepared.append((message, *ready))
        claimed = [message for message, _, _ in prepared]
        Message.objects.bulk_update(claimed, CLAIM_FIELDS)
        attempts = MessageAttempt.objects.bulk_create(
            [
                MessageAttempt(message=m, number=m.attempts, provider=m.provider, started_at=now)
                for m in claimed
            ]
        )
        MessageStatusChange.objects.bulk_create(
            [
                MessageStatusChange(
                    message=m,
                    from_status="queued",
                    to_status="sending",
                    source="send task",
                    detail=f"attempt {m.attempts}",
                    at=now,
                )
                for m in claimed
            ]
        )
    if wake_when_full and len(due) == limit:
        outbox_wake()  # more may be due: let another worker take them while this batch sends
    result = DrainResult(claimed=len(due), refused=len(due) - len(claimed))
    outcomes = _send_all(prepared)
    recorded, accepted = [], []
    for (message, _, _), attempt, outcome in zip(prepared, attempts, outcomes, strict=True):
        if isinstance(outcome, ProviderError):
            recorded.append(message_record_failure(message.pk, attempt.pk, outcome))
            result.failed += 1
        else:
            accepted.append((message.pk, attempt.pk, outcome.provider_message_id))
    if accepted:
        recorded += messages_record_accepted(accepted)
        result.accepted = len(accepted)
    return result, recorded


def provider_call(message: Message, outbound: OutboundMessage, config: ProviderConfig):
    """The provider's answer: its SendResult, or the ProviderError it was classified as.

    No transaction may be open: this is the network call.
    """
    try:
        return get_provider(message.provider).send(outbound, config)
    except ProviderError as exc:
        return exc
    except Exception as exc:  # a bug or an unexpected library error: retry, capped, and keep the text
        logger.exception(
            "provider raised unexpectedly message_id=%s provider=%s", message.pk, message.provider
        )
        return ProviderError(ErrorKind.RETRYABLE, "", repr(exc))


def _send_all(prepared: list) -> list:
    """Each message's provider outcome, in order; side by side when there are several."""
    if len(prepared) <= 1 or django_settings.LIVRA_OUTBOX_SEND_THREADS <= 1:
        return [provider_call(message, outbound, config) for message, outbound, config in prepared]
    return list(_pool().map(lambda item: provider_call(*item), prepared))


def _pool() -> ThreadPoolExecutor:
    # Made on first use, in the process that uses it (a prefork child, not the parent that forked it).
    global _send_pool
    if _send_pool is None:
        _send_pool = ThreadPoolExecutor(
            django_settings.LIVRA_OUTBOX_SEND_THREADS, thread_name_prefix="livra-send"
        )
    return _send_pool


class BatchLookups:
    """What preparing a send reads besides the message rows (``message_prepare_send``), from a few
    queries made once for the whole batch."""

    def __init__(self, messages: list[Message], now):
        stores = {message.order.store_id: message.order.store for message in messages}
        self._settings = {s.store_id: s for s in MessagingSettings.objects.filter(store__in=stores)}
        self._providers = {
            (p.store_id, p.channel): p for p in ChannelProvider.objects.filter(store__in=stores, enabled=True)
        }
        self._templates: dict[tuple, list[MessageTemplate]] = {}
        events = {message.event for message in messages}
        channels = {message.channel for message in messages}
        for template in MessageTemplate.objects.filter(
            Q(store__in=stores) | Q(store__isnull=True), event__in=events, channel__in=channels
        ):
            self._templates.setdefault((template.event, template.channel), []).append(template)
        self._shipments: dict[int, dict] = {}
        shipped = OrderEvent.objects.filter(
            order__in={message.order_id for message in messages}, type="shipped"
        ).order_by("id")
        for event in shipped:  # the latest one wins
            self._shipments[event.order_id] = event.payload
        whatsapp = {message.customer_id for message in messages if message.channel == Channel.WHATSAPP}
        self._window_open = set()
        if whatsapp:
            self._window_open = set(
                InboundMessage.objects.filter(
                    customer__in=whatsapp, channel=Channel.WHATSAPP, received_at__gt=now - WINDOW
                ).values_list("customer_id", flat=True)
            )

    def settings(self, store):
        if store.pk not in self._settings:
            self._settings[store.pk] = messaging_settings_for(store)  # made on first use
        settings = self._settings[store.pk]
        settings.store = store
        return settings

    def provider(self, store, channel: str) -> ChannelProvider | None:
        """The store's enabled provider for ``channel``; None when it has none (nothing sends it)."""
        return self._providers.get((store.pk, channel))

    def template(self, store, event: str, channel: str, language: str):
        candidates = [
            template
            for template in self._templates.get((event, channel), [])
            if template.store_id in (None, store.pk)
        ]
        return template_choose(candidates, language)

    def context(self, order, language: str, customer) -> dict:
        return order_context(order, language, customer, shipment=self._shipments.get(order.pk, {}))

    def window_open(self, customer) -> bool:
        return customer.pk in self._window_open
