"""A COD order's confirmation request, end to end, with every real part.

PostgreSQL, Redis and a real Celery worker process; the WhatsApp Cloud API and Twilio are
loopback fakes that speak their wire formats. WhatsApp refuses the customer as "not a WhatsApp
user" (131026), Livra falls back to SMS, Twilio accepts it and posts a signed delivery receipt,
and the order's admin page shows both attempts.
"""

import uuid

import pytest
from django.urls import reverse

from messaging.models import Message, MessageTemplate, Notification
from orders.models import OrderEvent
from orders.services import order_transition
from tests.celery_worker import WorkerProcess, broker_client, forget_queue, publish_for_real_to, wait_for
from tests.factories import OrderFactory, UserFactory, channel_provider_set
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
