"""Twilio's webhooks: signed status callbacks and inbound SMS/WhatsApp replies.

The fake signs each request exactly as Twilio does (HMAC-SHA1 of the public URL + sorted form
parameters, keyed with the Auth Token); the Django test client posts it to the one webhook view.
"""

import logging

import pytest
from django.urls import reverse

# get_provider() loads the built-in providers only while its registry is empty, so once any
# test module has imported one provider directly the others are missing (reported to the
# lead). The providers these tests reach are imported here so they are registered either way.
import messaging.providers.sandbox
import messaging.providers.twilio  # noqa: F401
from messaging.models import (
    Consent,
    InboundMessage,
    Message,
    MessageStatusChange,
    MessagingSettings,
    ProviderWebhook,
)
from messaging.providers import get_provider
from messaging.services.consent import consent_record
from orders.models import OrderEvent
from orders.services import order_transition
from tests.factories import OrderFactory, StoreFactory, channel_provider_set
from tests.fakes.twilio import FakeTwilio, new_sid

pytestmark = pytest.mark.django_db

PREFIX = "LIVRA_TWILIO"
PUBLIC_URL = "https://ops.livra.example"
SMS_SENDER = "+15005550006"
WHATSAPP_SENDER = "+14155238886"


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.LIVRA_PUBLIC_URL = PUBLIC_URL


@pytest.fixture
def fake(monkeypatch):
    with FakeTwilio() as fake:
        for name, value in fake.env(PREFIX).items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def store():
    store = StoreFactory()
    MessagingSettings.objects.create(
        store=store, channel_order=["sms", "email"], quiet_hours_start=None, quiet_hours_end=None
    )
    for channel, sender in (("sms", SMS_SENDER), ("whatsapp", WHATSAPP_SENDER)):
        channel_provider_set(
            store=store, channel=channel, provider="twilio", sender=sender, credentials_env_prefix=PREFIX
        )
    return store


@pytest.fixture
def awaiting_order(store, fake, django_capture_on_commit_callbacks):
    """An order waiting for the customer's answer; its SMS went through the fake."""
    order = OrderFactory(store=store)
    with django_capture_on_commit_callbacks(execute=True):
        order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)
    return order


@pytest.fixture
def sent_sms(awaiting_order) -> Message:
    message = Message.objects.get(order=awaiting_order)
    assert message.status == Message.Status.SENT
    return message


def inbound_url(store) -> str:
    return PUBLIC_URL + reverse("messaging:provider-inbound", args=["twilio", store.slug])


def status_changes(message: Message, to_status: str) -> int:
    return MessageStatusChange.objects.filter(message=message, to_status=to_status).count()


# --- status callbacks ----------------------------------------------------------------------------
def test_a_signed_delivered_callback_marks_the_message_delivered(client, fake, sent_sms):
    response = fake.callback(sent_sms.provider_message_id, "delivered").post_with(client)

    sent_sms.refresh_from_db()
    assert response.status_code == 200
    assert sent_sms.status == Message.Status.DELIVERED
    assert sent_sms.delivered_at is not None
    assert sent_sms.notification.status == "delivered"


def test_the_callback_url_given_to_twilio_is_the_one_the_webhook_verifies(client, fake, sent_sms):
    # The fake signs the StatusCallback URL it received; the view rebuilds it from LIVRA_PUBLIC_URL.
    callback = fake.callback(sent_sms.provider_message_id, "sent")

    assert callback.url == (
        f"{PUBLIC_URL}/webhooks/messaging/twilio/{sent_sms.order.store.slug}/status/?message_id={sent_sms.pk}"
    )
    assert callback.post_with(client).status_code == 200


def test_a_late_sent_after_delivered_changes_nothing(client, fake, sent_sms):
    fake.callback(sent_sms.provider_message_id, "delivered").post_with(client)

    response = fake.callback(sent_sms.provider_message_id, "sent").post_with(client)

    sent_sms.refresh_from_db()
    assert response.status_code == 200
    assert sent_sms.status == Message.Status.DELIVERED
    assert status_changes(sent_sms, "sent") == 1  # the send task's, not the late receipt's


def test_read_without_delivered_is_accepted(client, fake, sent_sms):
    fake.callback(sent_sms.provider_message_id, "read").post_with(client)

    sent_sms.refresh_from_db()
    assert sent_sms.status == Message.Status.READ
    assert sent_sms.delivered_at is not None and sent_sms.read_at is not None


def test_queued_and_sending_callbacks_are_stored_but_change_nothing(client, fake, sent_sms):
    for status in ("queued", "sending"):
        fake.callback(sent_sms.provider_message_id, status).post_with(client)

    sent_sms.refresh_from_db()
    assert sent_sms.status == Message.Status.SENT
    assert ProviderWebhook.objects.filter(kind="status", flagged=False).count() == 2


def test_an_undelivered_callback_makes_the_message_undeliverable_and_tries_the_next_channel(
    client, fake, sent_sms, django_capture_on_commit_callbacks
):
    callback = fake.callback(sent_sms.provider_message_id, "undelivered", error_code=30006)

    with django_capture_on_commit_callbacks(execute=True):
        callback.post_with(client)

    sent_sms.refresh_from_db()
    assert (sent_sms.status, sent_sms.error_code) == (Message.Status.UNDELIVERABLE, "30006")
    fallback = Message.objects.get(fallback_from=sent_sms)
    assert fallback.channel == "email"
    assert fallback.provider_message_id  # the sandbox took it


def test_a_failed_callback_with_an_opt_out_code_records_the_opt_out(client, fake, sent_sms):
    fake.callback(sent_sms.provider_message_id, "failed", error_code=21610).post_with(client)

    sent_sms.refresh_from_db()
    consent = Consent.objects.get(customer=sent_sms.customer, channel="sms")
    assert (consent.status, consent.source) == (Consent.Status.OPTED_OUT, Consent.Source.PROVIDER)
    assert sent_sms.status == Message.Status.FAILED


def test_a_callback_with_a_bad_signature_is_refused_logged_without_the_payload_and_not_stored(
    client, fake, sent_sms, caplog
):
    forged = fake.callback(sent_sms.provider_message_id, "delivered").tampered(ErrorCode="")

    with caplog.at_level(logging.DEBUG):
        response = forged.post_with(client)

    sent_sms.refresh_from_db()
    assert response.status_code == 403
    assert "bad signature" in caplog.text
    assert sent_sms.customer.phone not in caplog.text
    assert sent_sms.provider_message_id not in caplog.text
    assert not ProviderWebhook.objects.exists()
    assert sent_sms.status == Message.Status.SENT


def test_a_callback_signed_with_another_token_is_refused(client, fake, sent_sms):
    other = FakeTwilio(account_sid=fake.account_sid)  # never started: it only signs
    callback = fake.callback(sent_sms.provider_message_id, "delivered")
    resigned = other.sign(callback.url, callback.params)

    assert resigned.post_with(client).status_code == 403


def test_a_callback_without_a_signature_is_refused(client, fake, sent_sms):
    unsigned = fake.callback(sent_sms.provider_message_id, "delivered").with_signature("")

    assert unsigned.post_with(client).status_code == 403


def test_the_same_callback_twice_is_applied_once(client, fake, sent_sms):
    callback = fake.callback(sent_sms.provider_message_id, "delivered")

    first, second = callback.post_with(client), callback.post_with(client)

    assert (first.status_code, second.status_code) == (200, 200)
    assert ProviderWebhook.objects.count() == 1
    assert status_changes(sent_sms, "delivered") == 1


def test_a_receipt_finds_a_message_whose_send_ended_unknown_by_the_id_in_its_callback_url(
    client, fake, sent_sms
):
    # given: the send's answer never came, so Livra does not know Twilio's SID
    Message.objects.filter(pk=sent_sms.pk).update(status=Message.Status.UNKNOWN, provider_message_id="")

    fake.callback(sent_sms.provider_message_id, "delivered").post_with(client)

    sent_sms.refresh_from_db()
    assert sent_sms.status == Message.Status.DELIVERED
    assert sent_sms.provider_message_id == fake.sent[0].sid


def test_a_callback_for_an_unknown_sid_is_stored_and_flagged(client, fake, sent_sms):
    stranger = new_sid("SM")
    # Posted to the store's status URL as configured at Twilio, without a message of ours in it.
    callback = fake.callback(stranger, "delivered", url=fake.sent[0].status_callback.split("?")[0])

    response = callback.post_with(client)

    webhook = ProviderWebhook.objects.get()
    assert response.status_code == 200
    assert webhook.flagged
    assert stranger in webhook.flag_reason
    assert webhook.headers["X-Twilio-Signature"] == callback.signature


# --- inbound replies -----------------------------------------------------------------------------
def reply(client, fake, order, text, **kwargs):
    sender = kwargs.pop("from_", order.customer.phone)
    return fake.inbound(inbound_url(order.store), sender, text, to=SMS_SENDER, **kwargs).post_with(client)


@pytest.mark.parametrize("text", ["1", "oui", "Oui !", "نعم", "wakha"])
def test_a_yes_by_sms_confirms_the_customers_awaiting_order(client, fake, awaiting_order, text):
    reply(client, fake, awaiting_order, text)

    awaiting_order.refresh_from_db()
    assert awaiting_order.status == "confirmed"
    event = awaiting_order.events.get(transition="confirm")
    assert event.source == OrderEvent.Source.CUSTOMER
    inbound = InboundMessage.objects.get()
    assert (inbound.intent, inbound.handled, inbound.channel) == ("confirm", True, "sms")


@pytest.mark.parametrize("text", ["2", "non", "لا"])
def test_a_no_by_sms_cancels_the_customers_awaiting_order(client, fake, awaiting_order, text):
    reply(client, fake, awaiting_order, text)

    awaiting_order.refresh_from_db()
    assert awaiting_order.status == "cancelled"
    assert awaiting_order.events.get(transition="cancel").source == OrderEvent.Source.CUSTOMER


@pytest.mark.parametrize("text", ["STOP", "ARRET", "Arrêt"])
def test_stop_opts_the_customer_out_of_sms(client, fake, awaiting_order, text):
    reply(client, fake, awaiting_order, text)

    consent = Consent.objects.get(customer=awaiting_order.customer, channel="sms")
    assert (consent.status, consent.source) == (Consent.Status.OPTED_OUT, Consent.Source.CUSTOMER_REPLY)
    awaiting_order.refresh_from_db()
    assert awaiting_order.status == "awaiting_confirmation"


def test_start_opts_an_opted_out_customer_back_in(client, fake, awaiting_order):
    customer = awaiting_order.customer
    consent_record(customer, "sms", Consent.Status.OPTED_OUT, source=Consent.Source.CUSTOMER_REPLY)

    reply(client, fake, awaiting_order, "START")

    consent = Consent.objects.get(customer=customer, channel="sms")
    assert (consent.status, consent.source) == (Consent.Status.OPTED_IN, Consent.Source.CUSTOMER_REPLY)


def test_twilios_advanced_opt_out_classification_is_honoured(client, fake, awaiting_order):
    reply(client, fake, awaiting_order, "Désinscription svp", opt_out_type="STOP")

    consent = Consent.objects.get(customer=awaiting_order.customer, channel="sms")
    assert consent.status == Consent.Status.OPTED_OUT


def test_an_unclear_reply_waits_for_an_agent(client, fake, awaiting_order):
    reply(client, fake, awaiting_order, "Je peux payer par carte ?")

    inbound = InboundMessage.objects.get()
    assert (inbound.intent, inbound.handled) == (InboundMessage.Intent.OTHER, False)
    assert (inbound.customer, inbound.order) == (awaiting_order.customer, awaiting_order)
    assert inbound.text == "Je peux payer par carte ?"
    awaiting_order.refresh_from_db()
    assert awaiting_order.status == "awaiting_confirmation"


def test_the_inbound_webhook_answers_empty_twiml(client, fake, awaiting_order):
    response = reply(client, fake, awaiting_order, "merci")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content == b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def test_a_whatsapp_quick_reply_confirms_the_order_on_the_whatsapp_channel(
    client, fake, awaiting_order, sent_sms
):
    reply(
        client,
        fake,
        awaiting_order,
        "Confirmer",
        from_=f"whatsapp:{awaiting_order.customer.phone}",
        button_payload="confirm",
        replied_to_sid=sent_sms.provider_message_id,
    )

    awaiting_order.refresh_from_db()
    assert awaiting_order.status == "confirmed"
    inbound = InboundMessage.objects.get()
    assert (inbound.channel, inbound.sender) == ("whatsapp", awaiting_order.customer.phone)
    assert (inbound.button_payload, inbound.in_reply_to) == ("confirm", sent_sms)


def test_a_quick_reply_names_the_message_it_answers(rf, fake, awaiting_order, sent_sms):
    signed = fake.inbound(
        inbound_url(awaiting_order.store),
        f"whatsapp:{awaiting_order.customer.phone}",
        "Confirmer",
        button_payload="confirm",
        replied_to_sid=sent_sms.provider_message_id,
    )
    request = rf.post(signed.path, data=signed.body, content_type="application/x-www-form-urlencoded")

    [parsed] = get_provider("twilio").parse_inbound(request)

    assert parsed.in_reply_to_provider_id == sent_sms.provider_message_id
    assert (parsed.button_payload, parsed.text) == ("confirm", "Confirmer")


def test_the_same_inbound_message_twice_is_handled_once(client, fake, awaiting_order):
    message = fake.inbound(inbound_url(awaiting_order.store), awaiting_order.customer.phone, "1")

    message.post_with(client)
    message.post_with(client)

    assert InboundMessage.objects.count() == 1
    assert awaiting_order.events.filter(transition="confirm").count() == 1


def test_an_inbound_message_with_a_bad_signature_changes_nothing(client, fake, awaiting_order):
    forged = fake.inbound(inbound_url(awaiting_order.store), awaiting_order.customer.phone, "2").tampered(
        Body="1"
    )

    response = forged.post_with(client)

    awaiting_order.refresh_from_db()
    assert response.status_code == 403
    assert awaiting_order.status == "awaiting_confirmation"
    assert not InboundMessage.objects.exists()


def test_a_reply_from_an_unknown_number_is_kept_for_an_agent(client, fake, store):
    fake.inbound(inbound_url(store), "+212600000999", "1").post_with(client)

    inbound = InboundMessage.objects.get()
    assert (inbound.customer, inbound.handled) == (None, False)


# --- over real HTTP --------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_fake_posts_a_signed_callback_over_http_that_the_live_server_applies(
    live_server, settings, fake, store
):
    # given Twilio was told to call back the live server (a URL with a port, like many proxies)
    settings.LIVRA_PUBLIC_URL = live_server.url
    order = OrderFactory(store=store)
    order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)
    message = Message.objects.get(order=order)
    assert fake.sent[0].status_callback.startswith(live_server.url)

    # when the fake posts the receipt the way Twilio does
    status = fake.callback(message.provider_message_id, "delivered").deliver()

    # then
    message.refresh_from_db()
    assert status == 200
    assert message.status == Message.Status.DELIVERED
