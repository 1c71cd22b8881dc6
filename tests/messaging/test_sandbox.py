"""The demo's sandbox provider: simulated receipts, signed webhooks, and the phone page."""

import datetime
import hashlib
import hmac
import json
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from messaging.models import Channel, InboundMessage, Message, MessagingSettings, ProviderWebhook
from messaging.providers.sandbox import SIGNATURE_HEADER, sandbox_signature
from messaging.sandbox_tasks import REPLY_RETRIES, reply_retry_countdown, sandbox_reply_post_task
from orders.models import OrderEvent, Store
from orders.services import order_transition
from orders.transitions import OrderStatus
from tests.factories import CustomerFactory, OrderFactory, StoreFactory, UserFactory, order_in_status
from tests.fakes.server import FakeResponse, FakeServer
from tests.faults.services import free_port

pytestmark = pytest.mark.django_db

S = OrderStatus
CASABLANCA = ZoneInfo("Africa/Casablanca")
SIGNATURE_META = "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_")


class LivraPublicUrl(FakeServer):
    """Stands where LIVRA_PUBLIC_URL points: records what the sandbox posts there."""

    def handle(self, request):
        return FakeResponse(200, "")


@pytest.fixture
def public_url(settings):
    with LivraPublicUrl() as server:
        settings.LIVRA_PUBLIC_URL = server.base_url
        yield server


@pytest.fixture
def asked(django_capture_on_commit_callbacks):
    """A COD order whose confirmation request the sandbox sent (and whose receipts came back).

    Its store has no quiet hours, so that what follows (the acknowledgement of a reply) goes out
    at once whatever the hour the test runs.
    """
    store = StoreFactory()
    MessagingSettings.objects.create(store=store, quiet_hours_start=None, quiet_hours_end=None)
    with django_capture_on_commit_callbacks(execute=True):
        return order_in_status(S.AWAITING_CONFIRMATION, store=store)


def inbound_url(store) -> str:
    return reverse("messaging:provider-inbound", args=["sandbox", store.slug])


def status_url(store) -> str:
    return reverse("messaging:provider-status", args=["sandbox", store.slug])


def post_signed(client, url: str, payload, *, signature: str | None = None):
    body = json.dumps(payload, ensure_ascii=False).encode()
    extra = {SIGNATURE_META: sandbox_signature(body) if signature is None else signature}
    return client.post(url, body, content_type="application/json", **extra)


def agent(client, *groups):
    user = UserFactory(groups=list(groups or ["Confirmation agent"]), stores=Store.objects.all())
    client.force_login(user)
    return user


def phone_url(customer) -> str:
    return reverse("messaging:sandbox-phone", args=[customer.pk])


def reply_url(customer) -> str:
    return reverse("messaging:sandbox-phone-reply", args=[customer.pk])


# --- Sending and simulated receipts -----------------------------------------------------------
def test_a_whatsapp_message_is_accepted_then_delivered_then_read(django_capture_on_commit_callbacks):
    order = OrderFactory()

    with django_capture_on_commit_callbacks(execute=True):
        order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)

    message = Message.objects.get(order=order)
    assert (message.channel, message.provider) == (Channel.WHATSAPP, "sandbox")
    assert message.provider_message_id.startswith("SB")
    assert [c.to_status for c in message.status_changes.all()] == [
        "queued",
        "sending",
        "sent",
        "delivered",
        "read",
    ]
    assert message.delivered_at is not None and message.read_at is not None


def test_an_sms_is_delivered_but_never_read(django_capture_on_commit_callbacks):
    order = OrderFactory(customer=CustomerFactory(preferred_channel=Channel.SMS))

    with django_capture_on_commit_callbacks(execute=True):
        order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)

    message = Message.objects.get(order=order)
    assert (message.channel, message.status) == (Channel.SMS, Message.Status.DELIVERED)
    assert message.read_at is None


@pytest.mark.django_db(transaction=True)
def test_a_receipt_that_overtakes_the_send_still_leaves_the_provider_id_recorded():
    # Without a surrounding transaction (a worker, or the live server) the sandbox's receipts run
    # at once under eager Celery, before the send task records the provider's answer.
    order = order_in_status(S.AWAITING_CONFIRMATION)

    message = Message.objects.get(order=order)
    assert message.status == Message.Status.READ
    assert message.provider_message_id.startswith("SB")


def test_a_delivered_receipt_ends_the_notification_so_no_other_channel_is_tried(asked):
    notification = asked.notifications.get(event="confirmation_requested")

    assert notification.status == "delivered"
    assert notification.messages.count() == 1


# --- Webhooks ---------------------------------------------------------------------------------
def test_a_signed_reply_is_accepted_and_answers_the_order(client, asked):
    payload = {"id": "SBIN-1", "from": asked.customer.phone, "channel": "whatsapp", "text": "wakha"}

    response = post_signed(client, inbound_url(asked.store), payload)

    asked.refresh_from_db()
    inbound = InboundMessage.objects.get()
    assert response.status_code == 200
    assert (inbound.provider, inbound.provider_message_id, inbound.intent) == ("sandbox", "SBIN-1", "confirm")
    assert asked.status == S.CONFIRMED


def test_a_button_reply_carries_its_payload_and_the_message_it_answers(client, asked):
    asked_message = Message.objects.get(order=asked)
    payload = {
        "id": "SBIN-2",
        "from": asked.customer.phone,
        "channel": "whatsapp",
        "text": "Annuler",
        "button_payload": f"cancel:{asked.pk}",
        "in_reply_to": asked_message.provider_message_id,
    }

    post_signed(client, inbound_url(asked.store), payload)

    inbound = InboundMessage.objects.get()
    asked.refresh_from_db()
    assert (inbound.button_payload, inbound.in_reply_to) == (f"cancel:{asked.pk}", asked_message)
    assert asked.status == S.CANCELLED


def test_a_reply_with_a_wrong_signature_is_refused_and_not_stored(client, asked):
    payload = {"id": "SBIN-3", "from": asked.customer.phone, "channel": "whatsapp", "text": "1"}

    response = post_signed(client, inbound_url(asked.store), payload, signature="0" * 64)

    assert response.status_code == 403
    assert not ProviderWebhook.objects.exists()
    assert not InboundMessage.objects.exists()


def test_a_reply_without_a_signature_is_refused(client, asked):
    body = json.dumps({"id": "SBIN-4", "from": asked.customer.phone, "channel": "whatsapp", "text": "1"})

    response = client.post(inbound_url(asked.store), body, content_type="application/json")

    assert response.status_code == 403


def test_a_reply_signed_with_a_key_not_derived_from_this_secret_key_is_refused(client, asked):
    body = json.dumps(
        {"id": "SBIN-5", "from": asked.customer.phone, "channel": "whatsapp", "text": "1"}
    ).encode()
    other_key = hmac.new(b"another-installation", b"livra-sandbox", hashlib.sha256).digest()
    forged = hmac.new(other_key, body, hashlib.sha256).hexdigest()

    response = client.post(
        inbound_url(asked.store), body, content_type="application/json", **{SIGNATURE_META: forged}
    )

    assert response.status_code == 403


def test_a_signed_reply_that_cannot_be_read_is_kept_and_flagged(client, asked):
    response = post_signed(client, inbound_url(asked.store), {"id": "SBIN-6", "channel": "pigeon"})

    webhook = ProviderWebhook.objects.get()
    assert response.status_code == 200
    assert webhook.flagged
    assert not InboundMessage.objects.exists()


def test_a_signed_status_webhook_moves_the_message_forward(client):
    order = order_in_status(S.AWAITING_CONFIRMATION)  # its send is never run: the row stays queued
    message = Message.objects.get(order=order)
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SENT, provider_message_id="SB-status")

    response = post_signed(client, status_url(order.store), [{"id": "SB-status", "status": "delivered"}])

    message.refresh_from_db()
    assert response.status_code == 200
    assert message.status == Message.Status.DELIVERED


# --- The phone page: who may see it -----------------------------------------------------------
def test_an_anonymous_visitor_is_sent_to_the_admin_login(client, asked):
    response = client.get(phone_url(asked.customer))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_staff_without_the_permission_to_read_messages_get_403(client, asked):
    client.force_login(UserFactory())

    assert client.get(phone_url(asked.customer)).status_code == 403
    assert client.post(reply_url(asked.customer), {"text": "1", "channel": "sms"}).status_code == 403


def test_a_customer_with_no_sandbox_message_has_no_phone_page_and_cannot_be_answered_for(client, public_url):
    customer = order_in_status(S.PLACED).customer
    agent(client)

    assert client.get(phone_url(customer)).status_code == 404
    assert client.post(reply_url(customer), {"text": "oui", "channel": "whatsapp"}).status_code == 404
    assert public_url.requests == []


def test_the_phone_list_shows_the_customers_with_sandbox_messages_awaiting_ones_first(client, asked):
    quiet = order_in_status(S.PLACED).customer
    agent(client)

    response = client.get(reverse("messaging:sandbox-phone-customers"))

    page = response.content.decode()
    assert response.status_code == 200
    assert [c.pk for c in response.context["customers"]] == [asked.customer.pk]
    assert phone_url(asked.customer) in page and phone_url(quiet) not in page
    assert "awaiting confirmation" in page


# --- The phone page: what it shows ------------------------------------------------------------
def test_the_phone_shows_the_confirmation_request_with_its_quick_replies_and_read_ticks(client, asked):
    message = Message.objects.get(order=asked)
    agent(client)

    response = client.get(phone_url(asked.customer))

    page = response.content.decode()
    assert response.status_code == 200
    assert f'data-message-id="{message.pk}" data-status="read"' in page
    assert 'class="ticks ticks-read"' in page
    assert message.body.split(",")[0] in page
    assert f'data-message-id="{message.pk}" data-button="confirm"' in page
    assert f'data-message-id="{message.pk}" data-button="cancel"' in page


def test_arabic_messages_are_shown_right_to_left(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = order_in_status(S.AWAITING_CONFIRMATION, customer=CustomerFactory(language="ar"))
    agent(client)

    response = client.get(phone_url(order.customer))

    page = response.content.decode()
    assert '<div class="text" dir="auto">مرحبا' in page
    assert 'dir="auto">تأكيد</button>' in page


def test_the_feed_shows_the_customers_replies_and_the_acknowledgement(
    client, asked, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(
            client,
            inbound_url(asked.store),
            {"id": "SBIN-7", "from": asked.customer.phone, "channel": "whatsapp", "text": "واخا"},
        )
    agent(client)

    feed = client.get(reverse("messaging:sandbox-phone-feed", args=[asked.customer.pk])).json()

    confirmed = Message.objects.get(order=asked, event="order_confirmed")
    assert 'class="bubble in channel-whatsapp reply-delivered"' in feed["conversation"]
    assert "واخا" in feed["conversation"]
    assert f'data-message-id="{confirmed.pk}" data-status="read"' in feed["conversation"]
    assert 'data-status="confirmed"' in feed["orders"]


def test_the_conversation_is_split_into_the_stores_days_not_utc_days(client, asked):
    late_evening = datetime.datetime(2026, 6, 10, 23, 30, tzinfo=CASABLANCA)  # UTC+1 then
    Message.objects.filter(order=asked).update(created_at=late_evening)
    post_signed(
        client,
        inbound_url(asked.store),
        {"id": "SBIN-8", "from": asked.customer.phone, "channel": "whatsapp", "text": "Allô ?"},
    )
    InboundMessage.objects.update(received_at=late_evening + datetime.timedelta(hours=1))
    agent(client)

    page = client.get(phone_url(asked.customer)).content.decode()

    assert '<div class="day">10 Jun 2026</div>' in page
    assert '<div class="day">11 Jun 2026</div>' in page


def test_a_message_held_for_quiet_hours_says_when_it_goes_out(client, asked):
    MessagingSettings.objects.filter(store=asked.store).update(
        quiet_hours_start=datetime.time(21, 0), quiet_hours_end=datetime.time(9, 0)
    )
    with time_machine.travel(datetime.datetime(2026, 3, 10, 23, 0, tzinfo=CASABLANCA)):
        order_transition(asked, "confirm", source=OrderEvent.Source.SYSTEM)
    agent(client)

    response = client.get(phone_url(asked.customer))

    held = Message.objects.get(order=asked, event="order_confirmed")
    assert f'data-message-id="{held.pk}" data-status="queued"' in response.content.decode()
    assert "queued, goes out 11 Mar 09:00" in response.content.decode()


# --- The phone page: answering as the customer ------------------------------------------------
def test_a_quick_reply_posts_a_signed_webhook_to_livras_public_url(
    client, asked, public_url, django_capture_on_commit_callbacks
):
    message = Message.objects.get(order=asked)
    agent(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reply_url(asked.customer), {"message": message.pk, "button": "confirm"})

    [posted] = public_url.requests
    assert response.status_code == 202
    assert (posted.method, posted.path) == ("POST", inbound_url(asked.store))
    assert posted.headers[SIGNATURE_HEADER] == sandbox_signature(posted.body)
    assert posted.json() | {"id": "-"} == {
        "id": "-",
        "from": asked.customer.phone,
        "channel": "whatsapp",
        "text": "Confirmer",
        "button_payload": f"confirm:{asked.pk}",
        "in_reply_to": message.provider_message_id,
    }


def test_the_posted_quick_reply_is_what_the_webhook_accepts_and_applies(
    client, asked, public_url, django_capture_on_commit_callbacks
):
    message = Message.objects.get(order=asked)
    agent(client)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reply_url(asked.customer), {"message": message.pk, "button": "confirm"})
    [posted] = public_url.requests

    response = client.post(
        posted.path,
        posted.body,
        content_type="application/json",
        **{SIGNATURE_META: posted.headers[SIGNATURE_HEADER]},
    )

    asked.refresh_from_db()
    assert response.status_code == 200
    assert asked.status == S.CONFIRMED


def test_a_typed_reply_is_posted_with_its_text_and_channel(
    client, asked, public_url, django_capture_on_commit_callbacks
):
    agent(client)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reply_url(asked.customer), {"text": " STOP ", "channel": "whatsapp"})

    [posted] = public_url.requests
    assert {k: posted.json()[k] for k in ("channel", "text", "from")} == {
        "channel": "whatsapp",
        "text": "STOP",
        "from": asked.customer.phone,
    }


def test_a_customer_is_answered_for_only_on_a_channel_the_sandbox_reached_them_on(client, asked, public_url):
    agent(client)  # the sandbox reached this customer on WhatsApp only

    response = client.post(reply_url(asked.customer), {"text": "STOP", "channel": "sms"})

    assert response.status_code == 400
    assert public_url.requests == []


def test_a_customer_the_sandbox_only_e_mailed_has_no_phone(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = order_in_status(S.AWAITING_CONFIRMATION, customer=CustomerFactory(preferred_channel="email"))
    agent(client)

    listed = client.get(reverse("messaging:sandbox-phone-customers")).context["customers"]

    assert Message.objects.get(order=order).channel == Channel.EMAIL
    assert list(listed) == []
    assert client.get(phone_url(order.customer)).status_code == 404


def test_a_button_of_another_customers_message_is_refused(client, asked, public_url):
    other = order_in_status(S.AWAITING_CONFIRMATION)
    other_message = Message.objects.get(order=other)
    agent(client)

    response = client.post(reply_url(asked.customer), {"message": other_message.pk, "button": "confirm"})

    assert response.status_code == 400
    assert public_url.requests == []


@pytest.mark.parametrize(
    "data",
    [
        {"text": "   ", "channel": "whatsapp"},
        {"text": "x" * 1001, "channel": "whatsapp"},
        {"text": "oui", "channel": "fax"},
    ],
)
def test_an_empty_overlong_or_misdirected_reply_is_refused(client, asked, public_url, data):
    agent(client)

    response = client.post(reply_url(asked.customer), data)

    assert response.status_code == 400
    assert public_url.requests == []


def test_a_reply_without_the_pages_csrf_token_is_refused(asked, public_url):
    browser = Client(enforce_csrf_checks=True)
    agent(browser)

    response = browser.post(reply_url(asked.customer), {"text": "oui", "channel": "whatsapp"})

    assert response.status_code == 403
    assert public_url.requests == []


def test_replies_are_only_posted(client, asked):
    agent(client)

    assert client.get(reply_url(asked.customer)).status_code == 405


def test_the_phone_shows_and_answers_for_the_customers_of_the_agents_stores_only(client, asked):
    # given a confirmation agent of another store
    client.force_login(UserFactory(groups=["Confirmation agent"], stores=[StoreFactory()]))
    customer = asked.customer

    # then the customer is not on their list, and their phone is not found
    assert customer.name not in client.get(reverse("messaging:sandbox-phone-customers")).content.decode()
    assert client.get(phone_url(customer)).status_code == 404
    assert client.post(reply_url(customer), {"text": "1"}).status_code == 404


# --- The phone page: a reply Livra does not take --------------------------------------------
class FlakyLivra(FakeServer):
    """Answers with the statuses it is given, in turn, then 200."""

    def __init__(self, *statuses: int):
        super().__init__()
        self.statuses = list(statuses)

    def handle(self, request):
        return FakeResponse(self.statuses.pop(0) if self.statuses else 200, "")


@pytest.fixture
def nobody_listening(settings):
    settings.LIVRA_PUBLIC_URL = f"http://127.0.0.1:{free_port()}"
    return settings.LIVRA_PUBLIC_URL


def signed_reply_body(asked, text="oui") -> str:
    return json.dumps({"id": "SBIN-flaky", "from": asked.customer.phone, "channel": "whatsapp", "text": text})


def test_the_reply_task_backs_off_exponentially_up_to_a_minute():
    assert [reply_retry_countdown(retries) for retries in range(REPLY_RETRIES)] == [2, 4, 8, 16, 32, 60]


def test_a_reply_livra_answers_with_5xx_is_posted_again_until_livra_takes_it(
    asked, settings, reply_task_states
):
    with FlakyLivra(503, 502) as livra:
        settings.LIVRA_PUBLIC_URL = livra.base_url

        result = sandbox_reply_post_task.apply((asked.store.slug, signed_reply_body(asked)), throw=False)

    assert result.successful()
    assert [request.path for request in livra.requests] == [inbound_url(asked.store)] * 3


def test_a_reply_nobody_answers_is_tried_again_then_fails_saying_where_it_went(
    asked, nobody_listening, reply_task_states
):
    result = sandbox_reply_post_task.apply((asked.store.slug, signed_reply_body(asked)), throw=False)

    assert result.failed()
    assert str(result.result) == (
        f"nothing answered at {nobody_listening} (connection refused or host unreachable); "
        f"gave up after {REPLY_RETRIES + 1} attempts"
    )


def test_a_reply_livra_refuses_is_not_posted_again_and_says_what_to_check(asked, settings, reply_task_states):
    with FlakyLivra(403) as livra:
        settings.LIVRA_PUBLIC_URL = livra.base_url

        result = sandbox_reply_post_task.apply((asked.store.slug, signed_reply_body(asked)), throw=False)

    assert len(livra.requests) == 1
    assert "HTTP 403" in str(result.result) and "SECRET_KEY" in str(result.result)


def test_the_phone_shows_a_reply_that_failed_with_the_reason_and_a_way_to_send_it_again(
    client, asked, nobody_listening, reply_task_states, django_capture_on_commit_callbacks
):
    agent(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reply_url(asked.customer), {"text": "oui", "channel": "whatsapp"})

    feed = client.get(reverse("messaging:sandbox-phone-feed", args=[asked.customer.pk])).json()
    reply_id = response.json()["reply"]
    assert response.status_code == 202
    assert f'data-reply-id="{reply_id}" data-reply-state="failed"' in feed["conversation"]
    assert f"nothing answered at {nobody_listening}" in feed["conversation"]
    assert f'class="resend" data-reply-id="{reply_id}"' in feed["conversation"]


def test_a_reply_sent_again_is_the_same_reply_and_once_livra_has_it_it_shows_as_delivered(
    client, asked, settings, nobody_listening, reply_task_states, django_capture_on_commit_callbacks
):
    agent(client)
    with django_capture_on_commit_callbacks(execute=True):
        reply_id = client.post(reply_url(asked.customer), {"text": "oui", "channel": "whatsapp"}).json()[
            "reply"
        ]

    with LivraPublicUrl() as livra, django_capture_on_commit_callbacks(execute=True):
        settings.LIVRA_PUBLIC_URL = livra.base_url
        client.post(reply_url(asked.customer), {"resend": reply_id})
    [posted] = livra.requests
    client.post(
        posted.path,
        posted.body,
        content_type="application/json",
        **{SIGNATURE_META: posted.headers[SIGNATURE_HEADER]},
    )

    feed = client.get(reverse("messaging:sandbox-phone-feed", args=[asked.customer.pk])).json()
    asked.refresh_from_db()
    assert posted.json()["id"] == reply_id
    assert asked.status == S.CONFIRMED
    assert 'data-reply-state="delivered"' in feed["conversation"]
    assert "delivered to Livra" in feed["conversation"]
    assert reply_id not in feed["conversation"]  # the pending copy is gone: Livra's own is shown
