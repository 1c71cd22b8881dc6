"""Twilio SMS and WhatsApp sending: the real twilio SDK, through the outbox, against a loopback fake.

Each test runs a real status change (order → awaiting_confirmation) with the on-commit kicks
executed, so the message goes claim → provider call → outcome exactly as in production; only the
host differs (``LIVRA_TWILIO_BASE_URL`` points the SDK at ``tests/fakes/twilio.py``).
"""

import base64
import json
import logging
import socket
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

# get_provider() loads the built-in providers only while its registry is empty, so once any
# test module has imported one provider directly the others are missing (reported to the
# lead). The providers these tests reach are imported here so they are registered either way.
import messaging.providers.sandbox
import messaging.providers.twilio  # noqa: F401
from messaging.models import (
    ChannelProvider,
    Consent,
    Message,
    MessageAttempt,
    MessageTemplate,
    MessagingSettings,
)
from messaging.providers import ErrorKind, get_provider
from messaging.providers.twilio import ERROR_KINDS, error_kind_for, retry_after_seconds
from messaging.services.dispatch import message_send
from orders.models import OrderEvent
from orders.services import order_transition
from tests.factories import OrderFactory, StoreFactory, channel_provider_set
from tests.fakes.twilio import FakeTwilio

pytestmark = pytest.mark.django_db

PREFIX = "LIVRA_TWILIO"
SMS_SENDER = "+15005550006"
WHATSAPP_SENDER = "+14155238886"
CONTENT_SID = "HX" + "b" * 32


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.LIVRA_PUBLIC_URL = "https://ops.livra.example"


@pytest.fixture
def fake(monkeypatch):
    with FakeTwilio() as fake:
        for name, value in fake.env(PREFIX).items():
            monkeypatch.setenv(name, value)
        yield fake


def store_sending_with_twilio(channel_order, *providers):
    store = StoreFactory()
    MessagingSettings.objects.create(
        store=store, channel_order=channel_order, quiet_hours_start=None, quiet_hours_end=None
    )
    for channel, sender in providers:
        channel_provider_set(
            store=store, channel=channel, provider="twilio", sender=sender, credentials_env_prefix=PREFIX
        )
    return store


@pytest.fixture
def sms_store():
    return store_sending_with_twilio(["sms", "email"], ("sms", SMS_SENDER))


@pytest.fixture
def whatsapp_store():
    return store_sending_with_twilio(
        ["whatsapp", "sms", "email"], ("whatsapp", WHATSAPP_SENDER), ("sms", SMS_SENDER)
    )


def ask_for_confirmation(store, capture, **order_kwargs) -> list[Message]:
    """Move a new order to awaiting_confirmation and run every send it asks for (fallbacks too)."""
    order = OrderFactory(store=store, **order_kwargs)
    with capture(execute=True):
        order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)
    return list(Message.objects.filter(order=order).order_by("id"))


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# --- success ------------------------------------------------------------------------------------
def test_an_sms_goes_to_twilio_with_the_documented_form_fields_and_basic_auth(
    fake, sms_store, django_capture_on_commit_callbacks
):
    [message] = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    [call] = fake.create_calls
    assert call.path == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    assert call.headers["Authorization"] == basic_auth(fake.account_sid, fake.auth_token)
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = {name: values[0] for name, values in call.form().items()}
    assert form == {
        "To": message.customer.phone,
        "From": SMS_SENDER,
        "Body": message.body,
        "StatusCallback": (
            f"https://ops.livra.example/webhooks/messaging/twilio/{sms_store.slug}/status/"
            f"?message_id={message.pk}"
        ),
    }
    assert "Répondez 1 pour confirmer" in form["Body"]


def test_an_accepted_sms_is_sent_with_twilios_sid_and_one_accepted_attempt(
    fake, sms_store, django_capture_on_commit_callbacks
):
    [message] = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    [accepted] = fake.sent
    assert accepted.sid.startswith("SM") and len(accepted.sid) == 34
    assert (message.status, message.provider, message.provider_message_id) == ("sent", "twilio", accepted.sid)
    [attempt] = message.attempt_rows.all()
    assert (attempt.outcome, attempt.provider_message_id) == (MessageAttempt.Outcome.ACCEPTED, accepted.sid)


def test_an_api_key_is_used_for_basic_auth_when_one_is_configured(
    fake, sms_store, monkeypatch, django_capture_on_commit_callbacks
):
    key_sid, key_secret = fake.api_key()
    monkeypatch.setenv(f"{PREFIX}_API_KEY_SID", key_sid)
    monkeypatch.setenv(f"{PREFIX}_API_KEY_SECRET", key_secret)

    [message] = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    [call] = fake.create_calls
    assert call.headers["Authorization"] == basic_auth(key_sid, key_secret)
    assert call.path == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    assert message.status == Message.Status.SENT


def test_a_messaging_service_sender_goes_as_messaging_service_sid(
    fake, sms_store, django_capture_on_commit_callbacks
):
    ChannelProvider.objects.filter(store=sms_store).update(sender="MG" + "a" * 32)

    [message] = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    form = fake.sent[0].form
    assert form["MessagingServiceSid"] == "MG" + "a" * 32
    assert "From" not in form
    assert message.status == Message.Status.SENT


def test_a_whatsapp_message_without_a_content_template_goes_as_free_text(
    fake, whatsapp_store, django_capture_on_commit_callbacks
):
    [message] = ask_for_confirmation(whatsapp_store, django_capture_on_commit_callbacks)

    form = fake.sent[0].form
    assert (form["To"], form["From"]) == (f"whatsapp:{message.customer.phone}", f"whatsapp:{WHATSAPP_SENDER}")
    assert form["Body"] == message.body
    assert message.status == Message.Status.SENT


def test_a_whatsapp_content_template_goes_as_content_sid_and_numbered_variables_without_a_body(
    fake, whatsapp_store, django_capture_on_commit_callbacks
):
    MessageTemplate.objects.create(
        store=whatsapp_store,
        event="confirmation_requested",
        channel="whatsapp",
        language="fr",
        body="Bonjour {customer_name}, confirmez-vous la commande {order_number} ?",
        body_parameters=["customer_name", "order_number", "cod_amount"],
        twilio_content_sid=CONTENT_SID,
    )

    [message] = ask_for_confirmation(
        whatsapp_store, django_capture_on_commit_callbacks, customer__name="Salma Alaoui"
    )

    form = fake.sent[0].form
    assert form["ContentSid"] == CONTENT_SID
    assert json.loads(form["ContentVariables"]) == {
        "1": "Salma Alaoui",
        "2": message.order.number,
        "3": "249,00 MAD",
    }
    assert "Body" not in form
    assert message.status == Message.Status.SENT


# --- errors: what each Twilio code does to the message ----------------------------------------
def test_an_invalid_number_makes_the_sms_undeliverable_and_queues_the_next_channel(
    fake, sms_store, django_capture_on_commit_callbacks
):
    fake.fail_next(21211)

    sms, email = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    assert (sms.status, sms.error_code) == (Message.Status.UNDELIVERABLE, "21211")
    assert sms.attempt_rows.get().outcome == MessageAttempt.Outcome.INVALID_RECIPIENT
    assert (email.channel, email.fallback_from_id) == ("email", sms.pk)
    assert "+212" not in sms.error  # Twilio quotes the number; it is not kept


def test_an_opted_out_recipient_is_recorded_as_opted_out_by_the_provider_and_the_next_channel_tried(
    fake, sms_store, django_capture_on_commit_callbacks
):
    fake.fail_next(21610)

    sms, email = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    consent = Consent.objects.get(customer=sms.customer, channel="sms")
    assert (consent.status, consent.source) == (Consent.Status.OPTED_OUT, Consent.Source.PROVIDER)
    assert consent.evidence == {"provider": "twilio", "error_code": "21610", "message_id": sms.pk}
    assert sms.status == Message.Status.UNDELIVERABLE
    assert email.fallback_from_id == sms.pk


def test_a_closed_whatsapp_window_makes_the_message_undeliverable_and_falls_back_to_sms(
    fake, whatsapp_store, django_capture_on_commit_callbacks
):
    fake.fail_next(63016)

    whatsapp, sms = ask_for_confirmation(whatsapp_store, django_capture_on_commit_callbacks)

    assert whatsapp.status == Message.Status.UNDELIVERABLE
    assert whatsapp.attempt_rows.get().outcome == MessageAttempt.Outcome.WINDOW_CLOSED
    assert (sms.channel, sms.fallback_from_id, sms.status) == ("sms", whatsapp.pk, Message.Status.SENT)
    assert [m.channel for m in fake.sent] == ["sms"]


def test_a_throttled_send_is_queued_again_no_sooner_than_retry_after(
    fake, sms_store, django_capture_on_commit_callbacks
):
    fake.throttle_next(retry_after=120)
    before = timezone.now()

    [message] = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    assert (message.status, message.attempts) == (Message.Status.QUEUED, 1)
    assert message.next_attempt_at >= before + timedelta(seconds=120)
    attempt = message.attempt_rows.get()
    assert (attempt.outcome, attempt.error_code, attempt.retry_after_seconds) == ("retryable", "20429", 120)


def test_a_server_error_is_retried_later(fake, sms_store, django_capture_on_commit_callbacks):
    fake.server_error_next(500)

    [message] = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    assert (message.status, message.attempts) == (Message.Status.QUEUED, 1)
    assert message.next_attempt_at > timezone.now()
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.RETRYABLE


def test_a_retried_message_is_sent_on_its_next_attempt(fake, sms_store, django_capture_on_commit_callbacks):
    fake.server_error_next(503)
    [message] = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())

    message_send(message.pk)

    message.refresh_from_db()
    assert (message.status, message.attempts) == (Message.Status.SENT, 2)
    assert message.provider_message_id == fake.sent[0].sid


def test_a_send_with_no_answer_in_time_is_unknown_and_never_sent_again(
    fake, sms_store, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setenv(f"{PREFIX}_TIMEOUT_SECONDS", "0.5")
    fake.hang_next(seconds=5)

    [message] = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)
    fake.release()
    again = message_send(message.pk)

    assert message.status == Message.Status.UNKNOWN
    assert message.attempt_rows.get().outcome == MessageAttempt.Outcome.UNKNOWN
    assert again is None
    assert len(fake.create_calls) == 1  # Twilio got it once; nobody asks again


def test_a_refused_connection_is_retried_because_nothing_was_sent(
    sms_store, monkeypatch, django_capture_on_commit_callbacks
):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv(f"{PREFIX}_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv(f"{PREFIX}_AUTH_TOKEN", "token")
    monkeypatch.setenv(f"{PREFIX}_BASE_URL", f"http://127.0.0.1:{port}")

    [message] = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    assert (message.status, message.attempts) == (Message.Status.QUEUED, 1)
    assert message.attempt_rows.get().error_code == "connect"


def test_wrong_credentials_fail_the_channel_and_fall_back(
    fake, sms_store, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setenv(f"{PREFIX}_AUTH_TOKEN", "not-the-token")

    sms, email = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    assert (sms.status, sms.error_code) == (Message.Status.FAILED, "20003")
    assert email.fallback_from_id == sms.pk


def test_missing_credentials_fail_the_channel_without_naming_a_secret(
    fake, sms_store, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.delenv(f"{PREFIX}_AUTH_TOKEN")

    sms, email = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    assert (sms.status, sms.error_code) == (Message.Status.FAILED, "config")
    assert f"{PREFIX}_AUTH_TOKEN" in sms.error
    assert email.fallback_from_id == sms.pk
    assert fake.create_calls == []


def test_sending_logs_no_phone_number_or_message_text(
    fake, sms_store, caplog, django_capture_on_commit_callbacks
):
    fake.fail_next(21211)  # Twilio's error text quotes the number

    with caplog.at_level(logging.DEBUG):
        sms, _ = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)

    assert f"message_id={sms.pk}" in caplog.text
    assert sms.customer.phone not in caplog.text
    assert sms.body not in caplog.text


# providers.md §0: how Twilio says "stop" versus "retry later".
DOCUMENTED_KINDS = [
    (21211, "invalid_recipient"),
    (21614, "invalid_recipient"),
    (21635, "invalid_recipient"),
    (30006, "invalid_recipient"),
    (21610, "opted_out"),
    (63014, "opted_out"),
    (63016, "window_closed"),
    (20429, "retryable"),
    (30003, "retryable"),
    (63018, "retryable"),
    (14107, "retryable"),
    (21608, "permanent"),
    (20003, "permanent"),
]


def test_the_documented_codes_are_exactly_the_table():
    assert sorted(ERROR_KINDS) == sorted(code for code, _ in DOCUMENTED_KINDS)


@pytest.mark.parametrize(("code", "kind"), DOCUMENTED_KINDS)
def test_each_documented_code_reaches_the_outbox_as_its_kind(
    code, kind, fake, sms_store, django_capture_on_commit_callbacks
):
    fake.fail_next(code)

    message = ask_for_confirmation(sms_store, django_capture_on_commit_callbacks)[0]

    attempt = message.attempt_rows.get()
    assert (attempt.outcome, attempt.error_code) == (kind, str(code))


@pytest.mark.parametrize(
    ("code", "http_status", "kind"),
    [
        (None, 429, ErrorKind.RETRYABLE),
        (None, 502, ErrorKind.RETRYABLE),
        (21617, 400, ErrorKind.PERMANENT),  # body too long: not in the table, a 4xx
        (20404, 404, ErrorKind.PERMANENT),
    ],
)
def test_codes_outside_the_table_are_judged_by_their_http_status(code, http_status, kind):
    assert error_kind_for(code, http_status) == kind


@pytest.mark.parametrize(("header", "seconds"), [("120", 120.0), (" 7 ", 7.0), ("soon", None), ("", None)])
def test_retry_after_in_seconds_is_read_and_nonsense_ignored(header, seconds):
    assert retry_after_seconds(header) == seconds


def test_retry_after_as_an_http_date_is_the_time_left_until_then():
    header = format_datetime(timezone.now() + timedelta(seconds=90), usegmt=True)

    assert retry_after_seconds(header) == pytest.approx(90, abs=2)


def test_the_provider_is_registered_for_sms_and_whatsapp():
    provider = get_provider("twilio")

    assert provider.channels == {"sms", "whatsapp"}
