"""SendGrid: the real SDK against a loopback SendGrid, and its signed Event Webhook.

Orders go through ``order_transition``; the outbox sends after commit through the store's
``sendgrid`` ChannelProvider, whose environment points the SDK at ``FakeSendGrid``. Events are
signed with the fake's P-256 key and posted to the webhook URL with Django's test client.
"""

import json
import socket
import time

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

# get_provider() loads the built-in providers only while the registry is empty, so a provider
# module another test imports first can hide these (core fix reported): register them here.
import messaging.providers.sandbox
import messaging.providers.sendgrid  # noqa: F401
from messaging.models import (
    Consent,
    Message,
    MessageAttempt,
    MessageStatusChange,
    MessageTemplate,
    Notification,
    ProviderWebhook,
)
from messaging.providers import ErrorKind, get_provider
from messaging.services.routing import messaging_settings_for
from orders.models import OrderEvent
from orders.services import order_transition
from tests.factories import (
    CustomerFactory,
    StoreFactory,
    channel_provider_set,
    order_in_status,
    without_queued_messages,
)
from tests.fakes.sendgrid import FakeSendGrid, bad_request, rate_limited, server_error, slow

pytestmark = pytest.mark.django_db

SENDER = "orders@babouche.example"
ENV = "LIVRA_SENDGRID"


# --- fixtures -------------------------------------------------------------------------------
@pytest.fixture
def sendgrid():
    with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
def store():
    store = StoreFactory(name="Babouche Store")
    settings = messaging_settings_for(store)
    # Order confirmations are not urgent: without this, a run at night would hold them till 9:00.
    settings.quiet_hours_start = settings.quiet_hours_end = None
    settings.save()
    return store


@pytest.fixture
def email_via_sendgrid(store, sendgrid, monkeypatch):
    monkeypatch.setenv(f"{ENV}_API_KEY", sendgrid.api_key)
    monkeypatch.setenv(f"{ENV}_BASE_URL", sendgrid.base_url)
    monkeypatch.setenv(f"{ENV}_WEBHOOK_PUBLIC_KEY", sendgrid.public_key)
    return channel_provider_set(
        store=store, channel="email", provider="sendgrid", sender=SENDER, credentials_env_prefix=ENV
    )


@pytest.fixture
def confirm(django_capture_on_commit_callbacks):
    """Confirm ``order`` and run what its commit kicks off; returns the confirmation e-mail."""

    def confirm(order) -> Message:
        with django_capture_on_commit_callbacks(execute=True):
            order_transition(order, "confirm", source=OrderEvent.Source.SYSTEM)
        return Message.objects.get(order=order, event="order_confirmed", channel="email")

    return confirm


def awaiting_confirmation(store, **customer):
    """An order waiting for its confirmation, for a customer reachable by e-mail only by default."""
    customer = CustomerFactory(store=store, **{"phone_raw": "", **customer})
    return without_queued_messages(order_in_status("awaiting_confirmation", store=store, customer=customer))


def email_first_with_whatsapp_behind(store):
    return awaiting_confirmation(store, phone_raw="0612345678", preferred_channel="email")


def post_events(client, store, body: bytes, headers: dict):
    url = reverse("messaging:provider-status", args=["sendgrid", store.slug])
    return client.post(url, data=body, content_type="application/json", headers=headers)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- sending --------------------------------------------------------------------------------
@pytest.mark.usefixtures("email_via_sendgrid")
def test_an_email_only_customer_gets_the_order_confirmation_through_sendgrid(store, sendgrid, confirm):
    # given
    order = awaiting_confirmation(store)

    # when
    message = confirm(order)

    # then
    (request,) = sendgrid.mail_sends
    assert request.headers["Authorization"] == f"Bearer {sendgrid.api_key}"
    mail = request.json()
    assert mail["from"] == {"email": SENDER}
    (personalization,) = mail["personalizations"]
    assert personalization["to"] == [{"email": order.customer.email}]
    assert mail["subject"] == f"Commande {order.number} confirmée"
    assert mail["content"] == [{"type": "text/plain", "value": message.body}]
    assert order.number in message.body
    assert personalization["custom_args"] == {"message_id": str(message.pk), "order_id": str(order.pk)}
    assert message.status == Message.Status.SENT
    assert message.provider == "sendgrid"
    assert message.provider_message_id == next(iter(sendgrid.accepted))


@pytest.mark.usefixtures("email_via_sendgrid")
def test_a_store_sendgrid_template_goes_as_a_dynamic_template_with_the_order_data(store, sendgrid, confirm):
    # given
    MessageTemplate.objects.create(
        store=store,
        event="order_confirmed",
        channel="email",
        language="fr",
        subject="Commande {order_number} confirmée",
        body="Merci {customer_name}",
        sendgrid_template_id="d-5f2c1e0b9a8d4c7e",
    )
    order = awaiting_confirmation(store)

    # when
    message = confirm(order)

    # then
    mail = sendgrid.mail_sends[0].json()
    assert mail["template_id"] == "d-5f2c1e0b9a8d4c7e"
    assert "content" not in mail
    data = mail["personalizations"][0]["dynamic_template_data"]
    assert data["order_number"] == order.number
    assert data["customer_name"] == order.customer.name
    assert data["store_name"] == "Babouche Store"
    assert message.status == Message.Status.SENT


@pytest.mark.usefixtures("email_via_sendgrid")
def test_a_rate_limited_send_is_retried_no_sooner_than_the_limit_resets(store, sendgrid, confirm):
    # given: SendGrid's limit resets in 15 minutes, far beyond the first backoff (15-30 s)
    reset_at = time.time() + 900
    sendgrid.fail_next(rate_limited(reset_at))
    order = awaiting_confirmation(store)

    # when
    message = confirm(order)

    # then
    assert message.status == Message.Status.QUEUED
    assert message.next_attempt_at.timestamp() >= reset_at - 2
    attempt = message.attempt_rows.get()
    assert (attempt.outcome, attempt.error_code) == (MessageAttempt.Outcome.RETRYABLE, "429")
    assert 890 <= attempt.retry_after_seconds <= 900


@pytest.mark.parametrize("status", [500, 503, 504])
@pytest.mark.usefixtures("email_via_sendgrid")
def test_a_sendgrid_server_error_is_retried_later(store, sendgrid, confirm, status):
    sendgrid.fail_next(server_error(status))
    order = awaiting_confirmation(store)

    message = confirm(order)

    assert message.status == Message.Status.QUEUED
    assert message.next_attempt_at > timezone.now()
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.RETRYABLE


@pytest.mark.usefixtures("email_via_sendgrid")
def test_a_rejected_request_fails_the_email_and_exhausts_an_email_only_notification(store, sendgrid, confirm):
    # given
    sendgrid.fail_next(
        bad_request(
            "The attachment content must be base64 encoded.", "attachments.0.content", "message.attachments"
        )
    )
    order = awaiting_confirmation(store)

    # when
    message = confirm(order)

    # then
    assert message.status == Message.Status.FAILED
    assert message.error_code == "400"
    assert "base64" in message.error
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.PERMANENT
    assert message.notification.status == Notification.Status.EXHAUSTED


@pytest.mark.usefixtures("email_via_sendgrid")
def test_a_rejected_email_falls_back_to_the_customers_next_channel(store, sendgrid, confirm):
    sendgrid.fail_next(bad_request("Invalid type. Expected: object, given: string.", "from", "message.from"))
    order = email_first_with_whatsapp_behind(store)

    message = confirm(order)

    assert message.status == Message.Status.FAILED
    fallback = Message.objects.get(fallback_from=message)
    assert fallback.channel == "whatsapp"
    assert fallback.sent_at is not None  # through the sandbox: the store has no WhatsApp provider


@pytest.mark.usefixtures("email_via_sendgrid")
def test_an_address_sendgrid_calls_invalid_makes_the_email_undeliverable(store, sendgrid, confirm):
    order = awaiting_confirmation(store, email="fatima.at.gmail.com")

    message = confirm(order)

    assert message.status == Message.Status.UNDELIVERABLE
    assert message.error == "Does not contain a valid address."
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.INVALID_RECIPIENT


@pytest.mark.usefixtures("email_via_sendgrid")
def test_a_wrong_api_key_fails_the_email(store, confirm, monkeypatch):
    monkeypatch.setenv(f"{ENV}_API_KEY", "SG.revoked")
    order = awaiting_confirmation(store)

    message = confirm(order)

    assert (message.status, message.error_code) == (Message.Status.FAILED, "401")


@pytest.mark.usefixtures("email_via_sendgrid")
def test_a_send_whose_answer_never_comes_is_not_sent_again(store, sendgrid, confirm, monkeypatch):
    # given: SendGrid takes the mail but answers after the client has given up
    monkeypatch.setenv(f"{ENV}_TIMEOUT", "0.3")
    sendgrid.fail_next(slow(2))
    order = awaiting_confirmation(store)

    # when
    message = confirm(order)

    # then
    assert message.status == Message.Status.UNKNOWN
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.UNKNOWN
    assert len(sendgrid.mail_sends) == 1


@pytest.mark.usefixtures("email_via_sendgrid")
def test_an_unreachable_sendgrid_is_retried_later(store, confirm, monkeypatch):
    monkeypatch.setenv(f"{ENV}_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    order = awaiting_confirmation(store)

    message = confirm(order)

    assert message.status == Message.Status.QUEUED
    attempt = message.attempt_rows.get()
    assert (attempt.outcome, attempt.error_code) == (MessageAttempt.Outcome.RETRYABLE, "connection_error")


# --- the signed Event Webhook ---------------------------------------------------------------
@pytest.fixture
def sent_email(store, confirm, email_via_sendgrid):
    return confirm(awaiting_confirmation(store))


def test_a_delivered_event_is_matched_by_its_sg_message_id_prefix(client, store, sendgrid, sent_email):
    # given: no custom_args, so only the sg_message_id can tell which message it is
    event = sendgrid.event("delivered", sent_email.provider_message_id, custom_args=False, response="250 OK")

    # when
    response = post_events(client, store, *sendgrid.signed([event]))

    # then
    assert response.status_code == 200
    sent_email.refresh_from_db()
    assert sent_email.status == Message.Status.DELIVERED
    assert sent_email.delivered_at.timestamp() == event["timestamp"]
    assert sent_email.notification.status == Notification.Status.DELIVERED
    assert not ProviderWebhook.objects.get().flagged


def test_a_delivered_event_is_matched_by_custom_args_when_its_id_is_not_the_stored_one(
    client, store, sendgrid, sent_email
):
    event = sendgrid.event(
        "delivered", sent_email.provider_message_id, sg_message_id="Zq3dT0oBQu2fJv9vd3xk1g.filterdrecv-1.0"
    )

    post_events(client, store, *sendgrid.signed([event]))

    sent_email.refresh_from_db()
    assert sent_email.status == Message.Status.DELIVERED


def test_an_open_event_marks_the_email_read(client, store, sendgrid, sent_email):
    event = sendgrid.event("open", sent_email.provider_message_id, useragent="Mozilla/5.0", ip="192.0.2.1")

    post_events(client, store, *sendgrid.signed([event]))

    sent_email.refresh_from_db()
    assert sent_email.status == Message.Status.READ
    assert sent_email.read_at is not None


def test_an_apple_privacy_open_proves_delivery_not_reading(client, store, sendgrid, sent_email):
    event = sendgrid.event("open", sent_email.provider_message_id, sg_machine_open=True)

    post_events(client, store, *sendgrid.signed([event]))

    sent_email.refresh_from_db()
    assert sent_email.status == Message.Status.DELIVERED


def test_a_bounce_makes_the_email_undeliverable_and_falls_back(
    client, store, sendgrid, confirm, email_via_sendgrid
):
    # given
    email = confirm(email_first_with_whatsapp_behind(store))
    event = sendgrid.event(
        "bounce",
        email.provider_message_id,
        type="bounce",
        status="5.1.1",
        reason="550 5.1.1 The email account that you tried to reach does not exist.",
    )

    # when
    post_events(client, store, *sendgrid.signed([event]))

    # then
    email.refresh_from_db()
    assert email.status == Message.Status.UNDELIVERABLE
    assert email.error_code == "5.1.1"
    assert Message.objects.get(fallback_from=email).channel == "whatsapp"


def test_a_dropped_unsubscribed_address_records_the_customers_email_opt_out(
    client, store, sendgrid, sent_email
):
    event = sendgrid.event("dropped", sent_email.provider_message_id, reason="Unsubscribed Address")

    post_events(client, store, *sendgrid.signed([event]))

    sent_email.refresh_from_db()
    assert sent_email.status == Message.Status.UNDELIVERABLE
    consent = Consent.objects.get(customer=sent_email.customer, channel="email")
    assert consent.status == Consent.Status.OPTED_OUT
    assert consent.source == Consent.Source.PROVIDER
    assert consent.evidence["provider"] == "sendgrid"


def sign_then_tamper(sendgrid, events):
    body, headers = sendgrid.signed(events)
    return body.replace(b'"delivered"', b'"open"'), headers


def sign_with_another_key(sendgrid, events):
    with FakeSendGrid() as impostor:
        impostor.accepted = sendgrid.accepted
        return impostor.signed(events)


def leave_unsigned(sendgrid, events):
    body, _ = sendgrid.signed(events)
    return body, {}


@pytest.mark.parametrize("forge", [sign_then_tamper, sign_with_another_key, leave_unsigned])
def test_a_batch_not_signed_by_sendgrid_is_refused_and_nothing_is_stored(
    client, store, sendgrid, sent_email, forge
):
    event = sendgrid.event("delivered", sent_email.provider_message_id)

    response = post_events(client, store, *forge(sendgrid, [event]))

    assert response.status_code == 403
    assert not ProviderWebhook.objects.exists()
    sent_email.refresh_from_db()
    assert sent_email.status == Message.Status.SENT


def test_a_redelivered_batch_is_applied_once(client, store, sendgrid, sent_email):
    body, headers = sendgrid.signed([sendgrid.event("delivered", sent_email.provider_message_id)])

    first = post_events(client, store, body, headers)
    second = post_events(client, store, body, headers)

    assert (first.status_code, second.status_code) == (200, 200)
    assert ProviderWebhook.objects.count() == 1
    assert (
        MessageStatusChange.objects.filter(message=sent_email, to_status=Message.Status.DELIVERED).count()
        == 1
    )


def test_an_event_for_an_unknown_message_is_stored_and_flagged(client, store, sendgrid, sent_email):
    event = sendgrid.event(
        "delivered", sent_email.provider_message_id, sg_message_id="UnknownXMessageId00001.filter0001.0"
    )
    event["message_id"] = "987654321"

    response = post_events(client, store, *sendgrid.signed([event]))

    assert response.status_code == 200
    webhook = ProviderWebhook.objects.get()
    assert webhook.flagged
    assert "UnknownXMessageId00001" in webhook.flag_reason
    sent_email.refresh_from_db()
    assert sent_email.status == Message.Status.SENT


def test_processed_and_deferred_events_change_nothing(client, store, sendgrid, sent_email):
    events = [
        sendgrid.event("processed", sent_email.provider_message_id),
        sendgrid.event(
            "deferred", sent_email.provider_message_id, response="400 try again later", attempt="1"
        ),
    ]

    post_events(client, store, *sendgrid.signed(events))

    sent_email.refresh_from_db()
    assert sent_email.status == Message.Status.SENT
    assert not ProviderWebhook.objects.get().flagged


def test_one_batch_carries_the_events_of_several_messages(
    client, store, sendgrid, confirm, email_via_sendgrid
):
    first, second = confirm(awaiting_confirmation(store)), confirm(awaiting_confirmation(store))
    events = [
        sendgrid.event("delivered", first.provider_message_id),
        sendgrid.event("delivered", second.provider_message_id),
        sendgrid.event("open", second.provider_message_id),
    ]

    post_events(client, store, *sendgrid.signed(events))

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (Message.Status.DELIVERED, Message.Status.READ)


# --- the event table ------------------------------------------------------------------------
def parsed(*events):
    request = RequestFactory().post("/", data=json.dumps(events), content_type="application/json")
    return get_provider("sendgrid").parse_status(request)


@pytest.mark.parametrize(
    ("fields", "status", "kind"),
    [
        ({"event": "delivered"}, "delivered", ""),
        ({"event": "open"}, "read", ""),
        ({"event": "click", "url": "https://babouche.example/"}, "read", ""),
        (
            {"event": "bounce", "type": "bounce", "status": "5.1.1"},
            "undeliverable",
            ErrorKind.INVALID_RECIPIENT,
        ),
        ({"event": "bounce", "type": "blocked", "status": "5.7.1"}, "failed", ErrorKind.PERMANENT),
        ({"event": "dropped", "reason": "Invalid"}, "undeliverable", ErrorKind.INVALID_RECIPIENT),
        ({"event": "dropped", "reason": "Bounced Address"}, "undeliverable", ErrorKind.INVALID_RECIPIENT),
        ({"event": "dropped", "reason": "Unsubscribed Address"}, "undeliverable", ErrorKind.OPTED_OUT),
        ({"event": "dropped", "reason": "Spam Reporting Address"}, "undeliverable", ErrorKind.OPTED_OUT),
        ({"event": "dropped", "reason": "Expired"}, "failed", ErrorKind.PERMANENT),
        ({"event": "spamreport"}, "undeliverable", ErrorKind.OPTED_OUT),
        ({"event": "unsubscribe"}, "undeliverable", ErrorKind.OPTED_OUT),
        ({"event": "group_unsubscribe", "asm_group_id": 1}, "undeliverable", ErrorKind.OPTED_OUT),
    ],
)
def test_each_sendgrid_event_maps_to_a_status_the_outbox_understands(fields, status, kind):
    event = {"sg_message_id": "Zq3dT0oBQu2fJv9vd3xk1g.filter0001.0", "timestamp": 1700000000, **fields}

    (update,) = parsed(event)

    assert (update.provider_message_id, update.status, update.error_kind) == (
        "Zq3dT0oBQu2fJv9vd3xk1g",
        status,
        kind,
    )


@pytest.mark.parametrize("name", ["processed", "deferred", "group_resubscribe", "something_new"])
def test_events_that_say_nothing_new_are_skipped(name):
    assert parsed({"event": name, "sg_message_id": "Zq3dT0oBQu2fJv9vd3xk1g.0", "timestamp": 1700000000}) == []
