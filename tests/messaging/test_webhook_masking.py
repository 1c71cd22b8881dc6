"""Masking personal data and account ids in raw provider webhooks (a pure function), over the
payloads the providers' fakes build exactly as the providers send them; and the admin page that
shows them masked unless the user holds ``messaging.view_pii``."""

import json
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from messaging.models import ProviderWebhook
from messaging.webhook_masking import body_for_display, masked_headers
from orders.models import Store
from tests.factories import StoreFactory, UserFactory, grant
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.fakes.whatsapp_cloud import WhatsAppCloudFake

CUSTOMER = "+212612345678"
URL = "https://livra.example.ma/webhooks/messaging/twilio/atlas-souk/inbound/"


def twilio_inbound_body(fake: FakeTwilio, *, from_=f"whatsapp:{CUSTOMER}", body="Je veux annuler") -> str:
    return urlencode(fake.inbound(URL, from_, body).params)


def masked(body: str) -> str:
    return body_for_display(body, masked=True)


# --- Twilio (form-encoded) -----------------------------------------------------------------------
def test_a_twilio_reply_loses_its_account_sid_numbers_name_and_text():
    fake = FakeTwilio()

    shown = masked(twilio_inbound_body(fake))

    for secret in (fake.account_sid, CUSTOMER, CUSTOMER.lstrip("+"), "Je veux annuler", "Client"):
        assert secret not in shown
    assert f"AccountSid=•••{fake.account_sid[-4:]}" in shown
    assert "From=whatsapp:•••78" in shown
    assert "Body=[15 characters hidden]" in shown


def test_a_twilio_reply_keeps_what_ops_follow_it_by():
    fake = FakeTwilio()
    params = fake.inbound(URL, CUSTOMER, "2", sid="SM" + "a" * 32).params

    shown = masked(urlencode(params))

    assert "MessageSid=SM" + "a" * 32 in shown
    assert "SmsStatus=received" in shown


def test_a_twilio_status_callback_keeps_its_status_and_error_code():
    fake = FakeTwilio()
    params = {
        "AccountSid": fake.account_sid,
        "MessageSid": "SM" + "b" * 32,
        "MessageStatus": "undelivered",
        "To": CUSTOMER,
        "From": "+15005550006",
        "ErrorCode": "30003",
    }

    shown = masked(urlencode(params))

    assert "MessageStatus=undelivered" in shown and "ErrorCode=30003" in shown
    assert CUSTOMER not in shown and "+15005550006" not in shown and fake.account_sid not in shown


# --- WhatsApp Cloud (JSON) -----------------------------------------------------------------------
def test_a_whatsapp_cloud_reply_loses_the_waba_and_phone_ids_numbers_name_and_text():
    fake = WhatsAppCloudFake()
    payload = fake.text_payload(CUSTOMER, "Mon adresse a changé")
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] = "Amina Benali"

    shown = masked(json.dumps(payload))

    for secret in (fake.waba_id, fake.phone_number_id, fake.display_phone_number, CUSTOMER.lstrip("+")):
        assert secret not in shown
    assert "Amina Benali" not in shown and "Mon adresse a changé" not in shown
    assert json.loads(shown)["entry"][0]["changes"][0]["value"]["messages"][0]["type"] == "text"


def test_a_whatsapp_cloud_button_reply_keeps_the_button_and_the_message_ids():
    fake = WhatsAppCloudFake()
    payload = fake.button_reply_payload(CUSTOMER, "confirm:42", "Confirmer", context_wamid="wamid.OUT1")

    message = json.loads(masked(json.dumps(payload)))["entry"][0]["changes"][0]["value"]["messages"][0]

    assert message["interactive"]["button_reply"]["id"] == "confirm:42"
    assert message["context"]["id"] == "wamid.OUT1"
    assert message["id"].startswith("wamid.")


def test_a_whatsapp_cloud_status_loses_the_recipient():
    fake = WhatsAppCloudFake()
    payload = fake.status_payload("wamid.X1", "delivered")

    status = json.loads(masked(json.dumps(payload)))["entry"][0]["changes"][0]["value"]["statuses"][0]

    assert status["recipient_id"] == "•••00"
    assert (status["id"], status["status"]) == ("wamid.X1", "delivered")


# --- SendGrid (JSON list of events) --------------------------------------------------------------
def test_a_sendgrid_bounce_loses_the_address_wherever_it_is():
    fake = FakeSendGrid()
    fake.accepted["msg-1"] = {
        "personalizations": [{"to": [{"email": "amina@example.ma"}], "custom_args": {}}]
    }
    event = fake.event(
        "bounce", "msg-1", reason="550 5.1.1 <amina@example.ma>: user unknown", ip="168.245.1.2"
    )

    shown = masked(json.dumps([event]))

    assert "amina@example.ma" not in shown and "168.245.1.2" not in shown
    assert "550 5.1.1 <•••>: user unknown" in shown
    assert json.loads(shown)[0]["sg_message_id"].startswith("msg-1.")


# --- anything else -------------------------------------------------------------------------------
def test_headers_lose_addresses_and_numbers_but_keep_the_signature():
    headers = {"User-Agent": "TwilioProxy/1.1", "X-Twilio-Signature": "abc=", "X-Note": "for +212612345678"}

    assert masked_headers(headers) == {
        "User-Agent": "TwilioProxy/1.1",
        "X-Twilio-Signature": "abc=",
        "X-Note": "for •••78",
    }


def test_a_body_that_is_neither_json_nor_a_form_is_masked_by_shape():
    assert masked("call me on +212 6 12 34 56 78 or amina@example.ma") == "call me on •••78 or •••"


def test_unmasked_display_is_the_body_laid_out_in_full():
    fake = FakeTwilio()

    shown = body_for_display(twilio_inbound_body(fake), masked=False)

    assert f"AccountSid={fake.account_sid}" in shown
    assert f"From=whatsapp:{CUSTOMER}" in shown


# --- the admin page --------------------------------------------------------------------------------
@pytest.fixture
def twilio_webhook(db):
    fake = FakeTwilio()
    store = StoreFactory()
    webhook = ProviderWebhook.objects.create(
        provider="twilio",
        kind="inbound",
        store=store,
        dedup_key="inbound:1",
        headers={"X-Twilio-Signature": "sig="},
        body=twilio_inbound_body(fake),
    )
    return webhook, fake


def page(client, webhook) -> str:
    return client.get(reverse("admin:messaging_providerwebhook_change", args=[webhook.pk])).content.decode()


@pytest.mark.django_db
def test_the_webhook_page_masks_personal_data_for_ops_agents(client, twilio_webhook):
    webhook, fake = twilio_webhook
    client.force_login(UserFactory(groups=["Ops agent"], stores=Store.objects.all()))

    shown = page(client, webhook)

    assert fake.account_sid not in shown and CUSTOMER not in shown and "Je veux annuler" not in shown
    assert "[15 characters hidden]" in shown


@pytest.mark.django_db
def test_the_webhook_page_shows_everything_to_who_may_see_personal_data(client, twilio_webhook):
    webhook, fake = twilio_webhook
    client.force_login(
        grant(UserFactory(stores=Store.objects.all()), "messaging.view_providerwebhook", "messaging.view_pii")
    )

    shown = page(client, webhook)

    assert fake.account_sid in shown and CUSTOMER in shown and "Je veux annuler" in shown


@pytest.mark.django_db
def test_store_admins_may_see_personal_data_and_agents_may_not(client):
    store_admin = UserFactory(groups=["Store admin"])
    ops_agent = UserFactory(groups=["Ops agent"])
    confirmation_agent = UserFactory(groups=["Confirmation agent"])

    assert store_admin.has_perm("messaging.view_pii")
    assert not ops_agent.has_perm("messaging.view_pii")
    assert not confirmation_agent.has_perm("messaging.view_pii")
