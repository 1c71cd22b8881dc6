"""Sending the outbox: claim, call the provider outside any transaction, record.

The drain claims up to ``BATCH_SIZE`` due messages in one short transaction (``FOR UPDATE SKIP
LOCKED``, so drains running side by side never take the same row), reads what rendering needs
once per batch, calls the providers on a small thread pool, and records the acceptances in one
more transaction. ``message_send`` is the same path for one message (a retry after its backoff).
Failures go through ``message_record_failure`` one by one: they are few, and each needs its own
decision (retry, fall back, opt out).

A claimed message is not yet a call: each attempt row says when its request is about to go out
(``started_at``), written before the call starts, for the calls starting together in one
statement that also writes the answers received since. So a worker killed mid-batch leaves rows
that tell a message never called (the sweep queues it again) from one whose request may have
gone out (the sweep marks it unknown) and from one whose answer came in (sent, or retried).

A full batch wakes another drain before sending, so other worker threads or processes take the
next batch while this one waits on the network.
"""

import logging
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from messaging.events import FALLBACK_EVENTS
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
from messaging.providers import (
    ErrorKind,
    OutboundMessage,
    ProviderConfig,
    ProviderError,
    SendResult,
    get_provider,
)
from messaging.services.outbox import (
    CLAIM_FIELDS,
    attempts_record_answers,
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
# each bounded by its provider's timeout (10 s), end well inside it. Should a call still wait for
# a thread when the lease ends, the sweep queues its message again and the call is not made.
BATCH_SIZE = 50

_send_threads_by_count: dict[int, tuple[ThreadPoolExecutor, threading.BoundedSemaphore]] = {}
_send_threads_made = threading.Lock()


@dataclass
class DrainResult:
    claimed: int = 0
    accepted: int = 0
    failed: int = 0
    refused: int = 0  # finished without a provider call (no consent any more, render failure…)
    taken_back: int = 0  # the lease ran out before the call could start: the sweep queued it again


@dataclass
class ProviderCall:
    """A claimed message's provider call and what came of it."""

    message: Message
    outbound: OutboundMessage
    config: ProviderConfig
    attempt: MessageAttempt
    answer: SendResult | ProviderError | None = None  # None: the call was not made
    answered_at: datetime | None = None


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
        calls = []
        for message in due:
            ready = message_prepare_send(message, now, lookups)
            if ready is not None:
                attempt = MessageAttempt(message=message, number=message.attempts, provider=message.provider)
                calls.append(ProviderCall(message, *ready, attempt=attempt))
        Message.objects.bulk_update([call.message for call in calls], CLAIM_FIELDS)
        MessageAttempt.objects.bulk_create([call.attempt for call in calls])
        MessageStatusChange.objects.bulk_create(
            [
                MessageStatusChange(
                    message=call.message,
                    from_status="queued",
                    to_status="sending",
                    source="send task",
                    detail=f"attempt {call.attempt.number}",
                    at=now,
                )
                for call in calls
            ]
        )
    if wake_when_full and len(due) == limit:
        outbox_wake()  # more may be due: let another worker take them while this batch sends
    result = DrainResult(claimed=len(due), refused=len(due) - len(calls))
    _call_all(calls)
    recorded, accepted = [], []
    for call in calls:
        if call.answer is None:
            result.taken_back += 1
        elif isinstance(call.answer, ProviderError):
            recorded.append(message_record_failure(call.message.pk, call.attempt.pk, call.answer))
            result.failed += 1
        else:
            accepted.append(
                (call.message.pk, call.attempt.pk, call.answer.provider_message_id, call.answered_at)
            )
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


def _call_all(calls: list[ProviderCall]) -> None:
    """Make ``calls``, side by side on the process's send threads when there are several; each
    one's answer is set on it.

    A call starts only once its attempt row says so (``_attempts_start``), and only when a thread
    is free for it: a call marked started must not wait in the pool's queue, where a crash would
    leave it looking as if its request might have gone out.
    """
    if len(calls) <= 1 or django_settings.LIVRA_OUTBOX_SEND_THREADS <= 1:
        answered = []
        for call in calls:
            started = _attempts_start([call], answered)
            answered = []
            if started:
                _call(call)
                answered.append(call)
        return
    pool, slots = _send_threads()
    waiting = deque(calls)
    running: dict[Future, ProviderCall] = {}
    answered = []  # answers not yet on their attempt rows
    while waiting:
        starting = []
        # Wait for a thread only with none of this batch's calls under way (drains share them).
        while waiting and slots.acquire(blocking=not running and not starting):
            starting.append(waiting.popleft())
        # Answers are written even with no call to start (the other drains hold the threads).
        if starting or answered:
            try:
                started = _attempts_start(starting, answered)
            except BaseException:
                for _ in starting:  # the process's other drains still need them
                    slots.release()
                raise
            answered = []
            for call in starting:
                if call.attempt.pk in started:
                    running[pool.submit(_call_on_a_slot, call, slots)] = call
                else:
                    slots.release()
        if waiting and running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
                answered.append(running.pop(future))
    for future in running:  # the last answers are written with the batch's outcomes
        future.result()


def _call(call: ProviderCall) -> None:
    call.answer = provider_call(call.message, call.outbound, call.config)
    call.answered_at = timezone.now()


def _call_on_a_slot(call: ProviderCall, slots: threading.BoundedSemaphore) -> None:
    try:
        _call(call)
    finally:
        slots.release()


_START_SQL = "UPDATE messaging_messageattempt SET started_at = %%s WHERE id IN (%s)"


def _attempts_start(starting: list[ProviderCall], answered: list[ProviderCall]) -> set[int]:
    """Write that ``starting``'s calls are about to go out, with the answers ``answered`` got, in
    one transaction; the attempt ids whose call may go (the sweep drops the attempt of a claim it
    took back, so that call must not be made)."""
    ids = [call.attempt.pk for call in starting]
    with transaction.atomic():
        if answered:
            attempts_record_answers([(call.attempt.pk, call.answer, call.answered_at) for call in answered])
        if not ids:
            return set()
        # Plain SQL, as for the answers: every provider call passes here.
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(_START_SQL % ", ".join(["%s"] * len(ids)), [now, *ids])
            if cursor.rowcount == len(ids):
                return set(ids)
    return set(MessageAttempt.objects.filter(pk__in=ids).values_list("pk", flat=True))


def _send_threads() -> tuple[ThreadPoolExecutor, threading.BoundedSemaphore]:
    """The process's send pool and a slot per thread, made on first use in the process that uses
    them (a prefork child, not the parent that forked it); a thread-pool worker's drains share them."""
    threads = django_settings.LIVRA_OUTBOX_SEND_THREADS
    with _send_threads_made:
        if threads not in _send_threads_by_count:  # one count in production; tests change it
            pool = ThreadPoolExecutor(threads, thread_name_prefix="livra-send")
            _send_threads_by_count[threads] = pool, threading.BoundedSemaphore(threads)
        return _send_threads_by_count[threads]


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
        events |= {FALLBACK_EVENTS[event] for event in events if event in FALLBACK_EVENTS}
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
