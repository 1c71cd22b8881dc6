"""A COD order's confirmation request, end to end, with every real part.

PostgreSQL, Redis and a real Celery worker process; the WhatsApp Cloud API and Twilio are
loopback fakes that speak their wire formats. WhatsApp refuses the customer as "not a WhatsApp
user" (131026), Livra falls back to SMS, Twilio accepts it and posts a signed delivery receipt,
and the order's admin page shows both attempts. And a customer who taps Confirm, then Cancel, is
answered that the order is already confirmed; tapping the answer's button queues the order.
"""

import uuid

import pytest
from django.urls import reverse

from automations.models import QueueEntry
from messaging.models import Message, MessageTemplate, Notification
from orders.models import OrderEvent
from orders.services import order_transition
from tests.celery_worker import WorkerProcess, broker_client, forget_queue, publish_for_real_to, wait_for
from tests.factories import OrderFactory, UserFactory, channel_provider_set, messaging_at_any_hour
from tests.fakes.twilio import FakeTwilio
from tests.fakes.whatsapp_cloud import WhatsAppCloudFake

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

NOT_A_WHATSAPP_USER = 131026


@pytest.fixture
def fakes():
    with WhatsAppCloudFake() as whatsapp, FakeTwilio() as twilio:
        yield whatsapp, twilio


@pytest.fixture
def worker(fakes, live_server, monkeypatch, tmp_path, settings):
    """A worker started after the providers' settings exist, so it sees them like production."""
    whatsapp, twilio = fakes
    for name, value in {
        "LIVRA_WA_ACCESS_TOKEN": whatsapp.access_token,
        "LIVRA_WA_APP_SECRET": whatsapp.app_secret,
        "LIVRA_WA_BASE_URL": whatsapp.base_url,
        **twilio.env("LIVRA_TWILIO"),
        "LIVRA_PUBLIC_URL": live_server.url,
    }.items():
        monkeypatch.setenv(name, value)
    settings.LIVRA_PUBLIC_URL = live_server.url
    process = WorkerProcess(f"livra-e2e-{uuid.uuid4().hex[:8]}", tmp_path / "worker.log")
    process.start()
    try:
        with publish_for_real_to(process.queue):
            yield process
    finally:
        process.stop()
        forget_queue(broker_client(), process.queue)
        print(f"--- worker log ---\n{process.log()}")


def configure_store(order, whatsapp):
    channel_provider_set(
        store=order.store,
        channel="whatsapp",
        provider="whatsapp_cloud",
        sender=whatsapp.phone_number_id,
        credentials_env_prefix="LIVRA_WA",
    )
    channel_provider_set(
        store=order.store,
        channel="sms",
        provider="twilio",
        sender="+15005550006",
        credentials_env_prefix="LIVRA_TWILIO",
    )
    # Outside the 24 h window WhatsApp only takes an approved template.
    MessageTemplate.objects.create(
        store=order.store,
        event="confirmation_requested",
        channel="whatsapp",
        language="fr",
        body="Bonjour {customer_name}, confirmez-vous la commande {order_number} ({cod_amount}) ?",
        whatsapp_template_name="cod_confirmation",
        whatsapp_language_code="fr",
        body_parameters=["customer_name", "order_number", "cod_amount"],
        buttons=[{"id": "confirm", "title": "Confirmer"}, {"id": "cancel", "title": "Annuler"}],
    )


def test_a_cod_order_not_on_whatsapp_is_asked_by_sms_and_the_page_shows_both_attempts(
    fakes, worker, live_server, client
):
    whatsapp, twilio = fakes
    order = OrderFactory(customer__phone_raw="0612345678")
    configure_store(order, whatsapp)
    whatsapp.fail_for(order.customer.phone, NOT_A_WHATSAPP_USER)

    # when: the order is asked for COD confirmation
    order_transition(order, "request_confirmation", source=OrderEvent.Source.AUTOMATION)

    # then: WhatsApp refused it, and the worker fell back to SMS, which Twilio accepted
    sms = wait_for(
        lambda: Message.objects.filter(order=order, channel="sms", status=Message.Status.SENT).first(),
        timeout=30,
        what="the SMS fallback to be accepted",
    )
    first = Message.objects.get(order=order, channel="whatsapp")
    assert (first.status, first.error_code) == (Message.Status.UNDELIVERABLE, str(NOT_A_WHATSAPP_USER))
    assert sms.fallback_from_id == first.pk
    assert whatsapp.refused and whatsapp.refused[0]["template"]["name"] == "cod_confirmation"
    assert [m.to for m in twilio.sent] == [order.customer.phone]

    # when: Twilio posts the signed delivery receipt to Livra over HTTP
    assert twilio.callback(sms.provider_message_id, "delivered").deliver() == 200

    # then: the SMS is delivered and the notification stops there
    sms.refresh_from_db()
    assert sms.status == Message.Status.DELIVERED
    assert sms.notification.status == Notification.Status.DELIVERED

    # and the order's page shows both attempts, the error and the fallback
    client.force_login(UserFactory(groups=["Ops agent"], stores=[order.store]))
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "whatsapp" in page and "sms" in page
    assert str(NOT_A_WHATSAPP_USER) in page
    assert "Delivered" in page and "Undeliverable" in page


def test_a_customer_who_taps_confirm_then_cancel_gets_the_late_answer_and_its_button_queues_the_order(
    fakes, worker, client
):
    whatsapp, twilio = fakes
    order = OrderFactory(customer__phone_raw="0612345679")
    configure_store(order, whatsapp)
    messaging_at_any_hour(order.store)  # the worker's clock is real: no quiet hours in the evening
    phone, inbound_url = (
        order.customer.phone,
        reverse("messaging:provider-inbound", args=["whatsapp_cloud", order.store.slug]),
    )

    def accepted(count: int) -> list[dict]:
        return wait_for(
            lambda: whatsapp.sent if len(whatsapp.sent) >= count else None,
            timeout=30,
            what=f"WhatsApp message {count} to be accepted",
        )

    def tap(payload: dict) -> None:
        assert whatsapp.post_signed(inbound_url, payload, client=client).status_code == 200

    # given: the order was asked to confirm on WhatsApp (an approved template with quick replies)
    order_transition(order, "request_confirmation", source=OrderEvent.Source.AUTOMATION)
    request = accepted(1)[0]

    # when: the customer taps Confirm, then Cancel on that message
    tap(whatsapp.quick_reply_payload(phone, f"confirm:{order.pk}", "Confirmer", request["wamid"]))
    accepted(2)
    tap(whatsapp.quick_reply_payload(phone, f"cancel:{order.pk}", "Annuler", request["wamid"]))

    # then: the order stays confirmed and the answer says so, with a button to be called
    answer = accepted(3)[2]
    order.refresh_from_db()
    assert order.status == "confirmed"
    assert answer["type"] == "interactive"
    assert "déjà confirmée" in answer["interactive"]["body"]["text"]
    [button] = answer["interactive"]["action"]["buttons"]
    assert button["reply"]["id"] == f"cancel:{order.pk}"

    # when: the customer taps that button
    tap(
        whatsapp.button_reply_payload(phone, button["reply"]["id"], button["reply"]["title"], answer["wamid"])
    )

    # then: the order is in the queue, the customer is told we got it, and that is all they got
    sent = accepted(4)
    entry = QueueEntry.objects.get(order=order, state="open")
    assert entry.reason == "customer asked to cancel after confirming"
    wait_for(
        lambda: not Message.objects.filter(order=order).exclude(status="sent").exists(),
        what="every message of the order to be sent",
    )
    assert [Message.objects.get(provider_message_id=s["wamid"]).event for s in whatsapp.sent] == [
        "confirmation_requested",
        "order_confirmed",
        "reply_late_confirmed",
        "reply_received",
    ]
    assert len(sent) == Message.objects.filter(order=order).count() == 4
    assert twilio.sent == []
