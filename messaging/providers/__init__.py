"""Messaging providers, registered by name. Each module exposes ``send(message) -> SendResult``."""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str


class Provider(Protocol):
    name: str

    def send(self, message) -> SendResult: ...


_REGISTRY: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    _REGISTRY[provider.name] = provider
    return provider


def get_provider(name: str) -> Provider:
    if not _REGISTRY:
        from messaging.providers import sandbox  # noqa: F401 - registers itself
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no messaging provider registered as {name!r}") from None
