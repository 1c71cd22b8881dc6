"""The demo's provider: accepts every message locally and talks to no outside network.

It stands in for real providers until a store configures them, so the whole path (outbox, send
task, receipts, replies) runs on a laptop. The Message row itself is the conversation, shown by
the sandbox phone page (messaging/sandbox_views.py). Like a real provider it:

- answers a send with an id, then reports delivery a moment later ("delivered" after
  ``DELIVERED_AFTER`` seconds, "read" after ``READ_AFTER`` on WhatsApp, the one channel with
  read receipts), through a Celery task with a countdown (messaging/sandbox_tasks.py);
- receives replies as signed webhooks on the generic provider URL
  ``/webhooks/messaging/sandbox/<store>/inbound/``. Only Livra can sign them: the key is derived
  from SECRET_KEY, so the webhook stays closed to the outside like every other provider's.

Wire format of an inbound webhook: a JSON object
``{"id", "from", "channel", "text", "button_payload", "in_reply_to"}`` and the header
``X-Livra-Sandbox-Signature: hex(HMAC-SHA256(key, raw body))``. Status webhooks (the same
signature) carry ``[{"id", "status"}]``.
"""

import hashlib
import hmac
import uuid

from django.conf import settings
from django.db import transaction

from config.celery import task_publish
from messaging.models import Channel
from messaging.providers import InboundReply, ProviderConfig, SendResult, StatusUpdate, register
from orders import untrusted_json

SIGNATURE_HEADER = "X-Livra-Sandbox-Signature"
DELIVERED_AFTER = 2  # seconds after the send
READ_AFTER = 6
STATUSES = frozenset({"sent", "delivered", "read", "failed", "undeliverable"})


def sandbox_signing_key() -> bytes:
    # Derived, not SECRET_KEY itself: a leaked sandbox signature says nothing about the key
    # that signs sessions.
    return hmac.new(settings.SECRET_KEY.encode(), b"livra-sandbox", hashlib.sha256).digest()


def sandbox_signature(body: bytes) -> str:
    return hmac.new(sandbox_signing_key(), body, hashlib.sha256).hexdigest()


class SandboxProvider:
    name = "sandbox"
    channels = frozenset(Channel.values)

    def send(self, outbound, config: ProviderConfig) -> SendResult:
        provider_message_id = f"SB{uuid.uuid4().hex}"
        receipts = [("delivered", DELIVERED_AFTER)]
        if outbound.channel == Channel.WHATSAPP:
            receipts.append(("read", READ_AFTER))
        # After commit, so a send inside a caller's transaction that rolls back reports nothing.
        transaction.on_commit(lambda: _schedule_receipts(outbound.message_id, provider_message_id, receipts))
        return SendResult(provider_message_id=provider_message_id)

    def verify(self, request, config: ProviderConfig) -> bool:
        given = request.headers.get(SIGNATURE_HEADER, "")
        expected = sandbox_signature(request.body)
        return bool(given) and hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))

    def parse_status(self, request) -> list[StatusUpdate]:
        events = untrusted_json.loads(request.body)
        if not isinstance(events, list):
            raise ValueError("a sandbox status webhook is a JSON list")
        updates = []
        for event in events:
            status = str(event.get("status", ""))
            if status not in STATUSES or not event.get("id"):
                raise ValueError(f"not a sandbox status: {status!r}")
            updates.append(StatusUpdate(provider_message_id=str(event["id"]), status=status))
        return updates

    def parse_inbound(self, request) -> list[InboundReply]:
        payload = untrusted_json.loads(request.body)
        if not isinstance(payload, dict):
            raise ValueError("a sandbox inbound webhook is a JSON object")
        channel, sender, message_id = (str(payload.get(key) or "") for key in ("channel", "from", "id"))
        if channel not in Channel.values or not sender or not message_id:
            raise ValueError("a sandbox reply needs a known channel, a sender and an id")
        return [
            InboundReply(
                channel=channel,
                sender=sender,
                provider_message_id=message_id,
                text=str(payload.get("text") or ""),
                button_payload=str(payload.get("button_payload") or ""),
                in_reply_to_provider_id=str(payload.get("in_reply_to") or ""),
            )
        ]


def _schedule_receipts(message_id: int, provider_message_id: str, receipts) -> None:
    from messaging.sandbox_tasks import sandbox_receipt_task

    # With the broker away a receipt is lost, as a real provider's sometimes is: the message stays
    # "sent", and an urgent one moves to the next channel when the receipt timeout passes.
    for status, countdown in receipts:
        task_publish(sandbox_receipt_task, message_id, provider_message_id, status, countdown=countdown)


register(SandboxProvider())
