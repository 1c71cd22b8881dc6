"""Meta WhatsApp Cloud API: what we send, how Meta's answers and webhooks move our messages and orders.

Every call goes over HTTP to a loopback fake of the Graph API (tests/fakes/whatsapp_cloud.py) that
checks the token, the path and the message's shape; webhooks are signed exactly as Meta signs them.
"""

import datetime
import json
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

import messaging.providers.sandbox  # noqa: F401 - SMS falls back to it; see the note below
from messaging.models import (
    Channel,
    ChannelProvider,
    InboundMessage,
    Message,
    MessageAttempt,
    MessageStatusChange,
    MessageTemplate,
    Notification,
    ProviderWebhook,
)
from messaging.providers import ErrorKind, OutboundMessage, ProviderConfig, ProviderError, TemplateRef
from messaging.providers.whatsapp_cloud import WhatsAppCloudProvider
from messaging.services.dispatch import message_send
from messaging.services.whatsapp_window import whatsapp_window_open
from orders.models import OrderEvent
from orders.services import order_transition
from orders.transitions import OrderStatus
from tests.factories import CustomerFactory, OrderFactory, StoreFactory, channel_provider_set, order_in_status
from tests.fakes.server import FakeResponse
from tests.fakes.whatsapp_cloud import WhatsAppCloudFake

# Importing a provider module fills the registry, and get_provider() only loads the built-ins into
# an empty registry; the sandbox (SMS here) is imported above so the fallback finds it either way.
pytestmark = pytest.mark.django_db

PREFIX = "LIVRA_WA"
VERIFY_TOKEN = "a-verify-token-only-meta-and-we-know"
SYSTEM = OrderEvent.Source.SYSTEM


# --- fixtures -------------------------------------------------------------------------------
@pytest.fixture
def fake():
    with WhatsAppCloudFake() as server:
        yield server


@pytest.fixture
def store():
    return StoreFactory()


@pytest.fixture
def config(fake, monkeypatch) -> ProviderConfig:
    monkeypatch.setenv(f"{PREFIX}_ACCESS_TOKEN", fake.access_token)
    monkeypatch.setenv(f"{PREFIX}_APP_SECRET", fake.app_secret)
    monkeypatch.setenv(f"{PREFIX}_VERIFY_TOKEN", VERIFY_TOKEN)
    monkeypatch.setenv(f"{PREFIX}_BASE_URL", fake.base_url)
    return ProviderConfig("whatsapp_cloud", fake.phone_number_id, PREFIX)


@pytest.fixture
def whatsapp_cloud(store, fake, config) -> ChannelProvider:
    """The store sends WhatsApp through the Cloud API (the fake); SMS stays on the sandbox."""
    return channel_provider_set(
        store=store,
        channel=Channel.WHATSAPP,
        provider="whatsapp_cloud",
        sender=fake.phone_number_id,
        credentials_env_prefix=PREFIX,
    )


@pytest.fixture
def approved_template(store) -> MessageTemplate:
    """The store's confirmation request, tied to a template Meta approved with two quick replies."""
    return MessageTemplate.objects.create(
        store=store,
        event="confirmation_requested",
        channel=Channel.WHATSAPP,
        language="fr",
        body="Bonjour {customer_name}, confirmez-vous la commande {order_number} ({cod_amount}) ?",
        whatsapp_template_name="cod_confirmation",
        whatsapp_language_code="fr",
        body_parameters=["customer_name", "order_number", "cod_amount"],
        buttons=[{"id": "confirm", "title": "Confirmer"}, {"id": "cancel", "title": "Annuler"}],
    )


@pytest.fixture
def order(store):
    return OrderFactory(store=store, customer__name="Salma Bennani", number="#1042")


def request_confirmation(order, capture) -> Message:
    """Ask the customer to confirm, run the on-commit kicks (sends run inline), return the first message."""
    with capture(execute=True):
        order_transition(order, "request_confirmation", source=SYSTEM)
    return Message.objects.filter(order=order).order_by("id").first()


def customer_wrote_on_whatsapp(customer, *, ago=timedelta(minutes=5)) -> InboundMessage:
    inbound = InboundMessage.objects.create(
        customer=customer,
        channel=Channel.WHATSAPP,
        provider="whatsapp_cloud",
        sender=customer.phone,
        text="Salam, c'est pour ma commande",
        intent=InboundMessage.Intent.OTHER,
    )
    InboundMessage.objects.filter(pk=inbound.pk).update(received_at=timezone.now() - ago)
    return inbound


def outbound(**overrides) -> OutboundMessage:
    values = {
        "message_id": 41,
        "channel": Channel.WHATSAPP,
        "to": "+212612345678",
        "sender": "106540352242922",
        "body": "Bonjour Salma, confirmez-vous la commande #1042 ?",
        "template": TemplateRef(whatsapp_name="cod_confirmation", whatsapp_language="fr"),
        "correlation": {"message_id": "41", "order_id": "7"},
    }
    return OutboundMessage(**{**values, **overrides})


def went_out(message) -> bool:
    """The provider accepted the message (what happened next is up to its receipts)."""
    return message.attempt_rows.filter(outcome=MessageAttempt.Outcome.ACCEPTED).exists()


def status_url(store) -> str:
    return reverse("messaging:provider-status", args=["whatsapp_cloud", store.slug])


def inbound_url(store) -> str:
    return reverse("messaging:provider-inbound", args=["whatsapp_cloud", store.slug])


def receipt_changes(message) -> int:
    return MessageStatusChange.objects.filter(message=message, source="receipt").count()


# --- sending: what goes over the wire -------------------------------------------------------
def test_a_template_send_names_the_template_language_ordered_parameters_and_quick_reply_payloads(
    fake, whatsapp_cloud, approved_template, order, django_capture_on_commit_callbacks
):
    message = request_confirmation(order, django_capture_on_commit_callbacks)

    sent = fake.sent[-1]
    assert sent["type"] == "template"
    assert sent["to"] == order.customer.phone.removeprefix("+")
    assert sent["template"]["name"] == "cod_confirmation"
    assert sent["template"]["language"] == {"code": "fr"}
    body, confirm, cancel = sent["template"]["components"]
    assert body == {
        "type": "body",
        "parameters": [
            {"type": "text", "text": "Salma Bennani"},
            {"type": "text", "text": "#1042"},
            {"type": "text", "text": "249,00 MAD"},
        ],
    }
    assert confirm == {
        "type": "button",
        "sub_type": "quick_reply",
        "index": "0",
        "parameters": [{"type": "payload", "payload": f"confirm:{order.pk}"}],
    }
    assert cancel["index"] == "1" and cancel["parameters"][0]["payload"] == f"cancel:{order.pk}"
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Message.Status.SENT, sent["wamid"])


def test_the_send_goes_to_the_phone_number_id_with_the_bearer_token(fake, config):
    WhatsAppCloudProvider().send(outbound(), config)

    request = fake.requests[-1]
    assert request.path == f"/v21.0/{fake.phone_number_id}/messages"
    assert request.headers["Authorization"] == f"Bearer {fake.access_token}"


def test_the_api_version_comes_from_the_environment(fake, config, monkeypatch):
    fake.api_version = "v23.0"
    monkeypatch.setenv(f"{PREFIX}_API_VERSION", "v23.0")

    WhatsAppCloudProvider().send(outbound(), config)

    assert fake.requests[-1].path == f"/v23.0/{fake.phone_number_id}/messages"


def test_the_message_id_rides_along_as_callback_data_for_correlation(fake, config):
    WhatsAppCloudProvider().send(outbound(message_id=41, correlation={"message_id": "41"}), config)

    assert fake.sent[-1]["biz_opaque_callback_data"] == "41"


def test_reply_buttons_go_as_an_interactive_button_message(fake, config):
    buttons = ({"id": "confirm:7", "title": "Confirmer"}, {"id": "cancel:7", "title": "Annuler"})

    WhatsAppCloudProvider().send(outbound(reply_buttons=buttons), config)

    sent = fake.sent[-1]
    assert sent["type"] == "interactive"
    assert sent["interactive"] == {
        "type": "button",
        "body": {"text": "Bonjour Salma, confirmez-vous la commande #1042 ?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "confirm:7", "title": "Confirmer"}},
                {"type": "reply", "reply": {"id": "cancel:7", "title": "Annuler"}},
            ]
        },
    }


def test_reply_buttons_are_cut_to_what_meta_accepts(fake, config):
    # Meta refuses a 4th button and titles over 20 characters; the fake checks both.
    buttons = tuple({"id": f"b{n}:7", "title": f"Option numéro {n} très longue"} for n in range(4))

    WhatsAppCloudProvider().send(outbound(reply_buttons=buttons), config)

    sent_buttons = fake.sent[-1]["interactive"]["action"]["buttons"]
    assert len(sent_buttons) == 3
    assert all(len(b["reply"]["title"]) <= 20 for b in sent_buttons)


def test_inside_the_window_the_confirmation_request_goes_with_interactive_buttons(
    fake, whatsapp_cloud, approved_template, order, django_capture_on_commit_callbacks
):
    customer_wrote_on_whatsapp(order.customer)

    request_confirmation(order, django_capture_on_commit_callbacks)

    sent = fake.sent[-1]
    assert sent["type"] == "interactive"
    ids = [b["reply"]["id"] for b in sent["interactive"]["action"]["buttons"]]
    assert ids == [f"confirm:{order.pk}", f"cancel:{order.pk}"]


def test_without_an_approved_template_text_goes_out_inside_the_window(
    fake, whatsapp_cloud, store, order, django_capture_on_commit_callbacks
):
    # given a plain text template (no approved WhatsApp template, no buttons) and a recent customer message
    MessageTemplate.objects.create(
        store=store,
        event="confirmation_requested",
        channel=Channel.WHATSAPP,
        language="fr",
        body="Bonjour {customer_name}, répondez 1 pour confirmer la commande {order_number}.",
    )
    customer_wrote_on_whatsapp(order.customer, ago=timedelta(hours=23))

    message = request_confirmation(order, django_capture_on_commit_callbacks)

    assert fake.sent[-1]["type"] == "text"
    assert "#1042" in fake.sent[-1]["text"]["body"]
    message.refresh_from_db()
    assert message.status == Message.Status.SENT


def test_without_an_approved_template_and_the_window_closed_nothing_is_sent_and_sms_takes_over(
    fake, whatsapp_cloud, order, django_capture_on_commit_callbacks
):
    customer_wrote_on_whatsapp(order.customer, ago=timedelta(hours=25))

    whatsapp = request_confirmation(order, django_capture_on_commit_callbacks)

    assert fake.requests == []
    whatsapp.refresh_from_db()
    assert (whatsapp.status, whatsapp.error_code) == (Message.Status.UNDELIVERABLE, "window_closed")
    assert whatsapp.attempt_rows.get().outcome == MessageAttempt.Outcome.WINDOW_CLOSED
    sms = Message.objects.get(order=order, channel=Channel.SMS)
    assert sms.fallback_from == whatsapp
    assert went_out(sms)


# --- sending: what Meta's answers do --------------------------------------------------------
def test_a_number_not_on_whatsapp_makes_the_message_undeliverable_and_sms_takes_over(
    fake, whatsapp_cloud, approved_template, order, django_capture_on_commit_callbacks
):
    fake.fail_for(order.customer.phone, 131026)

    whatsapp = request_confirmation(order, django_capture_on_commit_callbacks)

    whatsapp.refresh_from_db()
    assert (whatsapp.status, whatsapp.error_code) == (Message.Status.UNDELIVERABLE, "131026")
    sms = Message.objects.get(order=order, channel=Channel.SMS)
    assert sms.fallback_from == whatsapp
    assert went_out(sms)


def test_throttling_queues_the_message_for_a_later_retry(
    fake, whatsapp_cloud, approved_template, order, django_capture_on_commit_callbacks
):
    fake.fail_next(130429)

    message = request_confirmation(order, django_capture_on_commit_callbacks)

    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
    assert message.next_attempt_at > timezone.now()
    attempt = message.attempt_rows.get()
    assert (attempt.outcome, attempt.error_code) == (MessageAttempt.Outcome.RETRYABLE, "130429")
    assert not Message.objects.filter(order=order, channel=Channel.SMS).exists()


def test_a_throttled_message_goes_out_on_its_retry(
    fake, whatsapp_cloud, approved_template, order, django_capture_on_commit_callbacks
):
    fake.fail_next(130429)
    message = request_confirmation(order, django_capture_on_commit_callbacks)
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())  # the backoff has passed

    message_send(message.pk)

    message.refresh_from_db()
    assert (message.status, message.attempts) == (Message.Status.SENT, 2)
    assert message.provider_message_id == fake.sent[-1]["wamid"]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (131026, ErrorKind.INVALID_RECIPIENT),
        (131021, ErrorKind.INVALID_RECIPIENT),
        (131030, ErrorKind.INVALID_RECIPIENT),
        (137000, ErrorKind.INVALID_RECIPIENT),
        (131050, ErrorKind.OPTED_OUT),
        (131047, ErrorKind.WINDOW_CLOSED),
        (130429, ErrorKind.RETRYABLE),
        (131056, ErrorKind.RETRYABLE),
        (80007, ErrorKind.RETRYABLE),
        (4, ErrorKind.RETRYABLE),
        (131048, ErrorKind.RETRYABLE),
        (1, ErrorKind.RETRYABLE),
        (2, ErrorKind.RETRYABLE),
        (131000, ErrorKind.RETRYABLE),
        (131016, ErrorKind.RETRYABLE),
        (131049, ErrorKind.PERMANENT),
        (132000, ErrorKind.PERMANENT),
        (132001, ErrorKind.PERMANENT),
        (131009, ErrorKind.PERMANENT),
        (100, ErrorKind.PERMANENT),
        (190, ErrorKind.PERMANENT),
        (131031, ErrorKind.PERMANENT),
    ],
)
def test_each_graph_error_code_maps_to_what_the_outbox_should_do(fake, config, code, kind):
    fake.fail_next(code)

    with pytest.raises(ProviderError) as raised:
        WhatsAppCloudProvider().send(outbound(), config)

    assert (raised.value.kind, raised.value.code) == (kind, str(code))


def test_a_server_error_without_a_graph_envelope_is_retried(fake, config):
    fake.answer_next(FakeResponse(status=502, body="<html>Bad Gateway</html>"))

    with pytest.raises(ProviderError) as raised:
        WhatsAppCloudProvider().send(outbound(), config)

    assert (raised.value.kind, raised.value.code) == (ErrorKind.RETRYABLE, "http_502")


def test_a_wrong_access_token_is_a_permanent_error(fake, config, monkeypatch):
    monkeypatch.setenv(f"{PREFIX}_ACCESS_TOKEN", "EAAG-revoked")

    with pytest.raises(ProviderError) as raised:
        WhatsAppCloudProvider().send(outbound(), config)

    assert (raised.value.kind, raised.value.code) == (ErrorKind.PERMANENT, "190")


def test_a_missing_access_token_fails_permanently_without_calling_the_api(fake, config, monkeypatch):
    monkeypatch.delenv(f"{PREFIX}_ACCESS_TOKEN")

    with pytest.raises(ProviderError) as raised:
        WhatsAppCloudProvider().send(outbound(), config)

    assert raised.value.kind == ErrorKind.PERMANENT
    assert f"{PREFIX}_ACCESS_TOKEN" in raised.value.text
    assert fake.requests == []


def test_no_answer_in_time_is_unknown_because_meta_may_have_taken_the_message(fake, config):
    fake.delay_next(1.0)

    with pytest.raises(ProviderError) as raised:
        WhatsAppCloudProvider(timeout=(5, 0.2)).send(outbound(), config)

    assert raised.value.kind == ErrorKind.UNKNOWN


def test_a_refused_connection_is_retried_because_nothing_went_out(config, monkeypatch):
    with WhatsAppCloudFake() as gone:
        closed_url = gone.base_url
    monkeypatch.setenv(f"{PREFIX}_BASE_URL", closed_url)

    with pytest.raises(ProviderError) as raised:
        WhatsAppCloudProvider().send(outbound(), config)

    assert (raised.value.kind, raised.value.code) == (ErrorKind.RETRYABLE, "connection_refused")


# --- the 24-hour window ---------------------------------------------------------------------
def test_the_window_is_open_for_a_day_after_the_customer_wrote_on_whatsapp():
    customer = CustomerFactory()
    customer_wrote_on_whatsapp(customer, ago=timedelta(hours=23, minutes=59))

    assert whatsapp_window_open(customer)


def test_the_window_closes_24_hours_after_the_customer_last_wrote():
    customer = CustomerFactory()
    customer_wrote_on_whatsapp(customer, ago=timedelta(hours=2))

    assert not whatsapp_window_open(customer, now=timezone.now() + timedelta(hours=22, seconds=1))


def test_an_sms_reply_does_not_open_the_whatsapp_window():
    customer = CustomerFactory()
    InboundMessage.objects.create(
        customer=customer, channel=Channel.SMS, provider="twilio", sender=customer.phone, intent="other"
    )

    assert not whatsapp_window_open(customer)


def test_another_customers_message_does_not_open_the_window():
    customer, other = CustomerFactory(), CustomerFactory()
    customer_wrote_on_whatsapp(other)

    assert not whatsapp_window_open(customer)


# --- the subscription handshake -------------------------------------------------------------
def test_the_handshake_echoes_the_challenge_when_the_verify_token_matches(client, store, whatsapp_cloud):
    response = client.get(
        status_url(store),
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN},
    )

    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


def test_the_handshake_is_refused_with_a_wrong_verify_token(client, store, whatsapp_cloud):
    response = client.get(
        status_url(store),
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "guess"},
    )

    assert response.status_code == 403
    assert b"1158201444" not in response.content


# --- status webhooks ------------------------------------------------------------------------
@pytest.fixture
def sent_message(fake, whatsapp_cloud, approved_template, order, django_capture_on_commit_callbacks):
    message = request_confirmation(order, django_capture_on_commit_callbacks)
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    return message


def test_delivered_then_read_moves_the_message_forward(client, fake, store, sent_message):
    wamid = sent_message.provider_message_id

    for status in ("delivered", "read"):
        response = fake.post_signed(status_url(store), fake.status_payload(wamid, status), client=client)
        assert response.status_code == 200

    sent_message.refresh_from_db()
    assert sent_message.status == Message.Status.READ
    assert sent_message.delivered_at is not None and sent_message.read_at is not None
    assert sent_message.notification.status == Notification.Status.DELIVERED


def test_the_receipt_time_is_metas_timestamp(client, fake, store, sent_message):
    at = datetime.datetime(2025, 6, 25, 13, 29, 44, tzinfo=datetime.UTC)
    payload = fake.status_payload(
        sent_message.provider_message_id, "delivered", timestamp=int(at.timestamp())
    )

    fake.post_signed(status_url(store), payload, client=client)

    sent_message.refresh_from_db()
    assert sent_message.delivered_at == at


def test_a_late_sent_after_read_changes_nothing(client, fake, store, sent_message):
    wamid = sent_message.provider_message_id
    fake.post_signed(status_url(store), fake.status_payload(wamid, "read"), client=client)
    changes = receipt_changes(sent_message)

    fake.post_signed(status_url(store), fake.status_payload(wamid, "sent"), client=client)

    sent_message.refresh_from_db()
    assert sent_message.status == Message.Status.READ
    assert receipt_changes(sent_message) == changes


def test_read_without_delivered_is_accepted(client, fake, store, sent_message):
    # Meta skips "delivered" when delivery and reading happen together (providers.md §2.3).
    fake.post_signed(
        status_url(store), fake.status_payload(sent_message.provider_message_id, "read"), client=client
    )

    sent_message.refresh_from_db()
    assert sent_message.status == Message.Status.READ
    assert sent_message.delivered_at is not None


def test_a_failed_status_for_a_number_not_on_whatsapp_makes_it_undeliverable_and_sms_takes_over(
    client, fake, store, sent_message, django_capture_on_commit_callbacks
):
    payload = fake.status_payload(sent_message.provider_message_id, "failed", error_code=131026)

    with django_capture_on_commit_callbacks(execute=True):
        fake.post_signed(status_url(store), payload, client=client)

    sent_message.refresh_from_db()
    assert (sent_message.status, sent_message.error_code) == (Message.Status.UNDELIVERABLE, "131026")
    sms = Message.objects.get(order=sent_message.order, channel=Channel.SMS)
    assert sms.fallback_from == sent_message
    assert went_out(sms)


def test_a_failed_status_for_another_reason_is_a_plain_failure(client, fake, store, sent_message):
    payload = fake.status_payload(sent_message.provider_message_id, "failed", error_code=131000)

    fake.post_signed(status_url(store), payload, client=client)

    sent_message.refresh_from_db()
    assert (sent_message.status, sent_message.error_code) == (Message.Status.FAILED, "131000")


def test_a_badly_signed_status_is_refused_and_nothing_is_stored(client, fake, store, sent_message):
    payload = fake.status_payload(sent_message.provider_message_id, "delivered")

    response = fake.post_signed(status_url(store), payload, client=client, secret="not-the-app-secret")

    assert response.status_code == 403
    assert not ProviderWebhook.objects.exists()
    sent_message.refresh_from_db()
    assert sent_message.status == Message.Status.SENT


def test_an_unsigned_status_is_refused(client, fake, store, sent_message):
    body = json.dumps(fake.status_payload(sent_message.provider_message_id, "delivered"))

    response = client.post(status_url(store), data=body, content_type="application/json")

    assert response.status_code == 403
    assert not ProviderWebhook.objects.exists()


def test_a_status_delivered_twice_is_applied_once(client, fake, store, sent_message):
    payload = fake.status_payload(sent_message.provider_message_id, "delivered")

    first = fake.post_signed(status_url(store), payload, client=client)
    second = fake.post_signed(status_url(store), payload, client=client)

    assert (first.status_code, second.status_code) == (200, 200)
    assert ProviderWebhook.objects.count() == 1
    assert receipt_changes(sent_message) == 1


def test_a_status_for_an_unknown_wamid_is_stored_and_flagged(client, fake, store, whatsapp_cloud):
    response = fake.post_signed(
        status_url(store), fake.status_payload("wamid.NOTOURS", "delivered"), client=client
    )

    assert response.status_code == 200
    webhook = ProviderWebhook.objects.get()
    assert webhook.flagged
    assert "wamid.NOTOURS" in webhook.flag_reason


@pytest.mark.django_db(transaction=True)
def test_a_signed_status_posted_over_http_like_meta_does_is_applied(live_server, fake, store, sent_message):
    payload = fake.status_payload(sent_message.provider_message_id, "delivered")

    response = fake.post_signed(f"{live_server.url}{status_url(store)}", payload)

    assert response.status_code == 200
    sent_message.refresh_from_db()
    assert sent_message.status == Message.Status.DELIVERED


def test_a_status_posted_to_the_single_callback_url_meta_uses_is_applied(client, fake, store, sent_message):
    # Meta has one callback URL per app for statuses and messages alike.
    fake.post_signed(
        inbound_url(store), fake.status_payload(sent_message.provider_message_id, "delivered"), client=client
    )

    sent_message.refresh_from_db()
    assert sent_message.status == Message.Status.DELIVERED


# --- inbound replies ------------------------------------------------------------------------
@pytest.fixture
def awaiting(store, whatsapp_cloud):
    return order_in_status(OrderStatus.AWAITING_CONFIRMATION, store=store)


def test_tapping_an_interactive_confirm_button_confirms_that_order(client, fake, store, awaiting):
    payload = fake.button_reply_payload(
        awaiting.customer.phone, f"confirm:{awaiting.pk}", "Confirmer", context_wamid="wamid.HBgMOURS"
    )

    response = fake.post_signed(inbound_url(store), payload, client=client)

    assert response.status_code == 200
    awaiting.refresh_from_db()
    assert awaiting.status == OrderStatus.CONFIRMED
    assert awaiting.events.exclude(transition="").latest("id").source == OrderEvent.Source.CUSTOMER
    inbound = InboundMessage.objects.get()
    assert (inbound.intent, inbound.handled, inbound.order) == (InboundMessage.Intent.CONFIRM, True, awaiting)


def test_tapping_a_template_cancel_quick_reply_cancels_that_order(client, fake, store, awaiting):
    payload = fake.quick_reply_payload(awaiting.customer.phone, f"cancel:{awaiting.pk}", "Annuler")

    fake.post_signed(inbound_url(store), payload, client=client)

    awaiting.refresh_from_db()
    assert awaiting.status == OrderStatus.CANCELLED
    assert awaiting.events.exclude(transition="").latest("id").source == OrderEvent.Source.CUSTOMER


def test_a_darija_yes_typed_as_text_confirms_the_awaiting_order(client, fake, store, awaiting):
    fake.post_signed(inbound_url(store), fake.text_payload(awaiting.customer.phone, "واخا"), client=client)

    awaiting.refresh_from_db()
    assert awaiting.status == OrderStatus.CONFIRMED


def test_an_unclear_text_waits_in_the_inbox(client, fake, store, awaiting):
    payload = fake.text_payload(awaiting.customer.phone, "Est-ce que je peux changer l'adresse ?")

    fake.post_signed(inbound_url(store), payload, client=client)

    awaiting.refresh_from_db()
    assert awaiting.status == OrderStatus.AWAITING_CONFIRMATION
    inbound = InboundMessage.objects.get()
    assert (inbound.intent, inbound.handled) == (InboundMessage.Intent.OTHER, False)
    assert (inbound.sender, inbound.customer) == (awaiting.customer.phone, awaiting.customer)


def test_a_reply_received_twice_is_handled_once(client, fake, store, awaiting):
    payload = fake.button_reply_payload(awaiting.customer.phone, f"confirm:{awaiting.pk}", "Confirmer")

    fake.post_signed(inbound_url(store), payload, client=client)
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] = "Salma"  # a new body
    fake.post_signed(inbound_url(store), payload, client=client)

    assert InboundMessage.objects.count() == 1
    assert awaiting.events.filter(source=OrderEvent.Source.CUSTOMER).count() == 1


def test_a_customer_message_opens_the_window(client, fake, store, awaiting):
    fake.post_signed(inbound_url(store), fake.text_payload(awaiting.customer.phone, "Salam"), client=client)

    assert whatsapp_window_open(awaiting.customer)


def test_a_badly_signed_reply_is_refused_and_changes_nothing(client, fake, store, awaiting):
    payload = fake.button_reply_payload(awaiting.customer.phone, f"confirm:{awaiting.pk}", "Confirmer")

    response = fake.post_signed(inbound_url(store), payload, client=client, secret="forged")

    assert response.status_code == 403
    awaiting.refresh_from_db()
    assert awaiting.status == OrderStatus.AWAITING_CONFIRMATION
    assert not InboundMessage.objects.exists()


def test_a_reply_is_linked_to_the_message_whose_button_was_tapped(client, fake, store, sent_message):
    order = sent_message.order
    payload = fake.button_reply_payload(
        order.customer.phone,
        f"confirm:{order.pk}",
        "Confirmer",
        context_wamid=sent_message.provider_message_id,
    )

    fake.post_signed(inbound_url(store), payload, client=client)

    assert InboundMessage.objects.get().in_reply_to == sent_message


def test_a_reply_names_the_message_whose_button_was_tapped(fake):
    payload = fake.button_reply_payload(
        "+212612345678", "confirm:7", "Confirmer", context_wamid="wamid.HBgMOURS"
    )
    request = RequestFactory().post("/", data=json.dumps(payload), content_type="application/json")

    (reply,) = WhatsAppCloudProvider().parse_inbound(request)

    assert reply.sender == "+212612345678"
    assert (reply.button_payload, reply.text) == ("confirm:7", "Confirmer")
    assert reply.in_reply_to_provider_id == "wamid.HBgMOURS"
