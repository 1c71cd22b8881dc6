"""The default COD workflow end to end: PostgreSQL, Redis and a real Celery worker that sends.

Time travels in this process only (the sweep runs here; the worker keeps the real clock), so the
story is told in the past: the orders are placed 25 hours ago, and each sweep runs at the moment
of the story it plays. What the sweep decides is then already due for the worker, which sends it
through the sandbox provider like the demo does.
"""

import json
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from automations.models import QueueEntry, Timer
from automations.services.sweep import timers_sweep
from messaging.models import Message, MessagingSettings, Notification
from messaging.providers.sandbox import SIGNATURE_HEADER, sandbox_signature
from orders.models import Order, OrderEvent
from orders.services.ingest import store_actions_apply
from tests.celery_worker import wait_for
from tests.factories import StoreFactory
from tests.orders.ingest_helpers import customer, incoming_order, upsert

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def store():
    store = StoreFactory()  # with the default rules, like every new store
    MessagingSettings.objects.update_or_create(
        store=store, defaults={"quiet_hours_start": None, "quiet_hours_end": None}
    )
    return store


def place(store, external_id: str, phone: str) -> Order:
    order = incoming_order(external_id, customer=customer(phone=phone))
    store_actions_apply(store, [upsert(order)], source=OrderEvent.Source.STORE, key=f"test:{external_id}")
    return Order.objects.get(store=store, external_id=external_id)


def sent(order: Order, event: str, count: int = 1):
    messages = Message.objects.filter(order=order, event=event, status__in=["sent", "delivered", "read"])
    return list(messages) if messages.count() >= count else None


def reply_on_whatsapp(client, order: Order, button: str) -> None:
    body = json.dumps(
        {
            "id": f"SBIN{uuid.uuid4().hex}",
            "from": order.customer.phone,
            "channel": "whatsapp",
            "button_payload": f"{button}:{order.pk}",
        }
    ).encode()
    url = reverse("messaging:provider-inbound", args=["sandbox", order.store.slug])
    response = client.post(
        url, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sandbox_signature(body)}
    )
    assert response.status_code == 200


def test_an_unanswered_cod_order_is_reminded_queued_then_cancelled_and_a_confirmed_one_is_left_alone(
    store, client, celery_worker
):
    placed_at = timezone.now() - timedelta(hours=25)

    # placed: the customer is asked to confirm (both orders)
    with time_machine.travel(placed_at, tick=False):
        silent = place(store, "1001", "0612345678")
        answers = place(store, "1002", "0698765432")
    assert wait_for(lambda: sent(silent, "confirmation_requested"), what="the confirmation request")
    assert wait_for(lambda: sent(answers, "confirmation_requested"), what="the second request")

    # 10 minutes later the second customer taps "Confirm" on WhatsApp: confirmed, its timers die
    with time_machine.travel(placed_at + timedelta(minutes=10), tick=False):
        reply_on_whatsapp(client, answers, "confirm")
    answers.refresh_from_db()
    assert answers.status == "confirmed"
    assert not Timer.objects.filter(order=answers, state="pending").exists()

    # 31 minutes: a reminder for the silent one only
    with time_machine.travel(placed_at + timedelta(minutes=31), tick=False):
        reminded = timers_sweep()
    assert reminded.fired == 1
    assert wait_for(lambda: sent(silent, "confirmation_reminder"), what="the reminder")
    assert not Notification.objects.filter(order=answers, event="confirmation_reminder").exists()

    # 2 hours: into the confirmation queue
    with time_machine.travel(placed_at + timedelta(hours=2, minutes=1), tick=False):
        queued = timers_sweep()
    assert queued.fired == 1
    entry = QueueEntry.objects.get(order=silent, state="open")
    assert "no answer" in entry.reason

    # 24 hours: cancelled by the rule, and the customer is told
    with time_machine.travel(placed_at + timedelta(hours=24, minutes=1), tick=False):
        cancelled = timers_sweep()
    assert cancelled.fired == 1
    silent.refresh_from_db()
    assert silent.status == "cancelled"
    event = silent.events.get(type="cancelled")
    assert (event.source, event.payload["rule_name"]) == (
        "automation",
        "COD: cancel what stays unconfirmed for 24 h",
    )
    assert wait_for(lambda: sent(silent, "order_cancelled"), what="the cancellation message")

    # and the confirmed order never heard a reminder or saw the queue
    assert not QueueEntry.objects.filter(order=answers).exists()
    answers.refresh_from_db()
    assert answers.status == "confirmed"
