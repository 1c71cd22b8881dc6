"""A provider whose answers a test scripts, for the outbox's own behaviour.

It sits at the adapter boundary (the interface in ``messaging/providers/__init__.py``) and talks to
no network: real adapters are tested against their loopback fakes elsewhere. A test says what the
next calls answer — in sequence, or for one recipient or channel — and reads back every call::

    scripted.script(ProviderError(ErrorKind.INVALID_RECIPIENT, "21211"), channel="whatsapp")
    scripted.script(accepted("SM1"), ProviderError(ErrorKind.RETRYABLE, "20429"))

An answer is a ``SendResult`` (returned), a ``ProviderError`` (raised) or a callable taking the
``OutboundMessage`` (called, for answers that need to act while "the request is under way").
With nothing scripted the call is accepted with a fresh id.
"""

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from messaging.models import Channel, ChannelProvider
from messaging.providers import (
    OutboundMessage,
    ProviderConfig,
    ProviderError,
    SendResult,
    provider_names,
    register,
)

Answer = SendResult | ProviderError | Callable[[OutboundMessage], SendResult]


def accepted(provider_message_id: str) -> SendResult:
    return SendResult(provider_message_id=provider_message_id)


@dataclass(frozen=True)
class Call:
    outbound: OutboundMessage
    config: ProviderConfig

    @property
    def channel(self) -> str:
        return self.outbound.channel


class ScriptedProvider:
    name = "scripted"
    channels = frozenset(Channel.values)

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.calls: list[Call] = []
        # (recipient or None, channel or None) → answers still to give, most specific first.
        self._scripts: dict[tuple[str | None, str | None], deque[Answer]] = {}
        self._ids = itertools.count(1)

    def script(self, *answers: Answer, to: str | None = None, channel: str | None = None) -> None:
        """Queue ``answers`` for the next calls to ``to`` on ``channel`` (None matches any)."""
        self._scripts.setdefault((to, channel), deque()).extend(answers)

    def send(self, outbound: OutboundMessage, config: ProviderConfig) -> SendResult:
        self.calls.append(Call(outbound, config))
        answer = self._next_answer(outbound)
        if answer is None:
            return accepted(f"SC{next(self._ids):06d}")
        if isinstance(answer, ProviderError):
            raise answer
        if isinstance(answer, SendResult):
            return answer
        return answer(outbound)

    def _next_answer(self, outbound: OutboundMessage) -> Answer | None:
        for key in ((outbound.to, outbound.channel), (outbound.to, None), (None, outbound.channel)):
            queued = self._scripts.get(key)
            if queued:
                return queued.popleft()
        queued = self._scripts.get((None, None))
        return queued.popleft() if queued else None

    # The webhook side is never used: receipts reach the outbox through message_apply_status.
    def verify(self, request, config: ProviderConfig) -> bool:
        return False

    def parse_status(self, request):
        return []

    def parse_inbound(self, request):
        return []


def use_scripted_provider(store, channels=tuple(Channel.values)) -> None:
    """Make ``store`` send on ``channels`` through the scripted provider."""
    for channel in channels:
        ChannelProvider.objects.update_or_create(
            store=store, channel=channel, defaults={"provider": ScriptedProvider.name, "sender": "LIVRA"}
        )


# The registry loads the built-in providers only while it is empty: load them first, or
# registering this one would hide the sandbox from every later lookup.
provider_names()
SCRIPTED = register(ScriptedProvider())
