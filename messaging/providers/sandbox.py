"""The demo's provider: accepts every message locally and talks to no network.

It stands in for real providers until a store configures them, so the whole path — outbox,
send task, receipts — runs on a laptop. Its "delivery receipt" is applied at once.
"""

import uuid

from messaging.models import Channel
from messaging.providers import ProviderConfig, SendResult, register


class SandboxProvider:
    name = "sandbox"
    channels = frozenset(Channel.values)

    def send(self, outbound, config: ProviderConfig) -> SendResult:
        return SendResult(provider_message_id=f"SB{uuid.uuid4().hex}")

    def verify(self, request, config: ProviderConfig) -> bool:
        return False  # nothing outside may post sandbox webhooks

    def parse_status(self, request):
        return []

    def parse_inbound(self, request):
        return []


register(SandboxProvider())
