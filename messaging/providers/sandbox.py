"""The demo's provider: accepts every message locally and talks to no network.

It stands in for real providers until they are configured (Twilio, WhatsApp Cloud API,
SendGrid arrive in the messaging issue), so the whole seam runs end to end on a laptop.
"""

import uuid

from messaging.providers import SendResult, register


class SandboxProvider:
    name = "sandbox"

    def send(self, message) -> SendResult:
        return SendResult(provider_message_id=f"SB{uuid.uuid4().hex}")


register(SandboxProvider())
