"""SMTP: Django's SMTP backend against a loopback SMTP server.

The store's ``smtp`` ChannelProvider reads host, port and login from the environment, which points
at ``FakeSMTPServer``. SMTP has no receipts: an accepted message stays "sent".
"""

import socket

import pytest
from django.urls import reverse

# get_provider() loads the built-in providers only while the registry is empty, so a provider
# module another test imports first can hide these (core fix reported): register them here.
import messaging.providers.smtp  # noqa: F401
from messaging.models import Message, MessageAttempt, Notification
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
from tests.fakes.smtp import FakeSMTPServer

pytestmark = pytest.mark.django_db

SENDER = "Babouche Store <orders@babouche.example>"
ENV = "LIVRA_SMTP"


@pytest.fixture
def smtp_server():
    with FakeSMTPServer(username="mailer", password="s3cret-for-tests") as server:
        yield server


@pytest.fixture
def store():
    store = StoreFactory()
    settings = messaging_settings_for(store)
    settings.quiet_hours_start = settings.quiet_hours_end = None  # not urgent: never held for the night
    settings.save()
    return store


@pytest.fixture(autouse=True)
def email_via_smtp(store, smtp_server, monkeypatch):
    monkeypatch.setenv(f"{ENV}_HOST", smtp_server.host)
    monkeypatch.setenv(f"{ENV}_PORT", str(smtp_server.port))
    monkeypatch.setenv(f"{ENV}_USER", "mailer")
    monkeypatch.setenv(f"{ENV}_PASSWORD", "s3cret-for-tests")
    monkeypatch.setenv(f"{ENV}_USE_TLS", "false")  # the fake speaks plain SMTP
    monkeypatch.setenv(f"{ENV}_TIMEOUT", "2")
    return channel_provider_set(
        store=store, channel="email", provider="smtp", sender=SENDER, credentials_env_prefix=ENV
    )


@pytest.fixture
def confirm(django_capture_on_commit_callbacks, store):
    """Confirm an e-mail-only customer's order and run what its commit kicks off."""

    def confirm(**customer) -> Message:
        customer = CustomerFactory(store=store, **{"phone_raw": "", **customer})
        order = without_queued_messages(
            order_in_status("awaiting_confirmation", store=store, customer=customer)
        )
        with django_capture_on_commit_callbacks(execute=True):
            order_transition(order, "confirm", source=OrderEvent.Source.SYSTEM)
        return Message.objects.get(order=order, event="order_confirmed", channel="email")

    return confirm


def test_the_order_confirmation_arrives_at_the_smtp_server_with_our_message_id(smtp_server, confirm):
    # when
    message = confirm()

    # then
    (mail,) = smtp_server.messages
    assert smtp_server.logins == [("mailer", "s3cret-for-tests")]
    assert mail.recipients == [message.recipient]
    assert mail.sender == "orders@babouche.example"
    assert mail.message["From"] == SENDER
    assert mail.message["To"] == message.recipient
    assert mail.message["Subject"] == message.subject == f"Commande {message.order.number} confirmée"
    assert mail.text.strip() == message.body
    assert mail.message["X-Livra-Message-Id"] == str(message.pk)
    assert mail.message["Message-ID"].endswith("@babouche.example>")
    assert message.status == Message.Status.SENT
    assert message.provider_message_id == mail.message["Message-ID"]


def test_a_refused_recipient_makes_the_email_undeliverable(smtp_server, confirm):
    # given
    smtp_server.refuse("nobody@babouche.example", 550, "5.1.1 <nobody@babouche.example>: User unknown")

    # when
    message = confirm(email="nobody@babouche.example")

    # then
    assert message.status == Message.Status.UNDELIVERABLE
    assert message.error_code == "550"
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.INVALID_RECIPIENT
    assert message.notification.status == Notification.Status.EXHAUSTED
    assert smtp_server.messages == []


def test_a_recipient_refused_for_now_is_retried_later(smtp_server, confirm):
    smtp_server.refuse("busy@babouche.example", 450, "4.2.1 Mailbox busy, try again later")

    message = confirm(email="busy@babouche.example")

    assert message.status == Message.Status.QUEUED
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.RETRYABLE


def test_a_message_refused_after_data_fails(smtp_server, confirm):
    smtp_server.data_reply = (554, "5.7.1 Message rejected as spam")

    message = confirm()

    assert (message.status, message.error_code) == (Message.Status.FAILED, "554")
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.PERMANENT


def test_a_server_that_goes_silent_after_data_leaves_the_email_unknown(smtp_server, confirm, monkeypatch):
    # given: the server takes the message, then answers too late
    monkeypatch.setenv(f"{ENV}_TIMEOUT", "0.3")
    smtp_server.data_reply_delay = 1.5

    # when
    message = confirm()

    # then: it did arrive, so sending again would mail the customer twice
    assert len(smtp_server.messages) == 1
    assert message.status == Message.Status.UNKNOWN
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.UNKNOWN


def test_a_refused_login_fails_the_email(confirm, monkeypatch):
    monkeypatch.setenv(f"{ENV}_PASSWORD", "wrong")

    message = confirm()

    assert (message.status, message.error_code) == (Message.Status.FAILED, "535")


def test_an_unreachable_smtp_server_is_retried_later(confirm, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv(f"{ENV}_PORT", str(closed_port))

    message = confirm()

    assert message.status == Message.Status.QUEUED
    attempt = message.attempt_rows.get()
    assert (attempt.outcome, attempt.error_code) == (MessageAttempt.Outcome.RETRYABLE, "connection_error")


def test_nothing_may_post_webhooks_as_the_smtp_provider(client, store):
    url = reverse("messaging:provider-status", args=["smtp", store.slug])

    response = client.post(url, data=b"[]", content_type="application/json")

    assert response.status_code == 403
