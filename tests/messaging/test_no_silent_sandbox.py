"""No silent sandbox (issue 10, point 7): a channel the store chose no provider for sends nothing
and says so — on the notification, on the store's admin page and in ``manage.py check`` — and the
sandbox works where a store chose it. (Routing's own cases are in test_routing.py.)"""

import pytest
from django.core import checks
from django.urls import reverse

from messaging.checks import NO_PROVIDER_ID
from messaging.models import ChannelProvider, Message, MessagingSettings, Notification
from messaging.services.dispatch import outbox_drain
from messaging.services.outbox import notification_create
from messaging.services.resend import ResendRefused, message_resend
from tests.factories import OrderFactory, StoreFactory, UserFactory, grant, messaging_at_any_hour

pytestmark = pytest.mark.django_db


def no_provider_warnings() -> list[str]:
    return [message.msg for message in checks.run_checks(tags=["messaging"]) if message.id == NO_PROVIDER_ID]


# --- manage.py check ---------------------------------------------------------------------------
def test_the_check_warns_for_each_channel_of_a_store_without_a_provider():
    store = StoreFactory(slug="bare", providers=False)
    ChannelProvider.objects.create(store=store, channel="whatsapp", provider="twilio")

    assert no_provider_warnings() == [
        'Store "bare" has no provider configured for sms: its messages on sms are not sent.',
        'Store "bare" has no provider configured for email: its messages on email are not sent.',
    ]


def test_the_check_is_quiet_for_a_store_that_chose_its_providers_even_the_sandbox():
    StoreFactory()  # the sandbox on every channel, chosen

    assert no_provider_warnings() == []


def test_the_check_counts_a_disabled_provider_as_none_and_ignores_unused_channels():
    store = StoreFactory(slug="sms-only", providers=False)
    MessagingSettings.objects.create(store=store, channel_order=["sms"])
    ChannelProvider.objects.create(store=store, channel="sms", provider="twilio", enabled=False)

    assert no_provider_warnings() == [
        'Store "sms-only" has no provider configured for sms: its messages on sms are not sent.'
    ]


# --- sending --------------------------------------------------------------------------------
def test_the_chosen_sandbox_still_sends():
    order = OrderFactory()
    messaging_at_any_hour(order.store)  # sent now, whatever the hour of the real clock
    notification_create(order, event="order_confirmed", key="k1")

    outbox_drain()

    message = order.messages.get()
    assert (message.provider, message.status) == ("sandbox", Message.Status.SENT)


def test_a_provider_disabled_while_the_message_waited_fails_it_and_the_next_channel_is_tried():
    order = OrderFactory()
    messaging_at_any_hour(order.store)  # sent now, whatever the hour of the real clock
    notification = notification_create(order, event="order_confirmed", key="k1")
    ChannelProvider.objects.filter(store=order.store, channel="whatsapp").update(enabled=False)

    outbox_drain()

    whatsapp, sms = order.messages.order_by("pk")
    assert (whatsapp.status, whatsapp.error_code, whatsapp.error) == (
        Message.Status.FAILED,
        "no_provider",
        "no provider configured for whatsapp",
    )
    assert (sms.channel, sms.fallback_reason) == ("sms", "no provider configured for whatsapp")
    assert Notification.objects.get(pk=notification.pk).status == Notification.Status.PENDING


def test_a_message_cannot_be_resent_on_a_channel_that_lost_its_provider():
    order = OrderFactory()
    notification_create(order, event="order_confirmed", key="k1")
    message = order.messages.get()
    Message.objects.filter(pk=message.pk).update(status=Message.Status.FAILED)
    ChannelProvider.objects.filter(store=order.store, channel="whatsapp").delete()
    agent = grant(UserFactory(), "messaging.resend_message")

    with pytest.raises(ResendRefused, match="no provider configured for whatsapp"):
        message_resend(message, actor=agent, reason="customer asked")


# --- webhooks ----------------------------------------------------------------------------------
def test_the_sandbox_webhook_is_not_found_for_a_store_that_did_not_choose_it(client):
    store = StoreFactory(providers=False)

    response = client.post(
        reverse("messaging:provider-inbound", args=["sandbox", store.slug]), b"{}", "application/json"
    )

    assert response.status_code == 404


# --- admin ---------------------------------------------------------------------------------
def test_the_store_page_names_the_channels_without_a_provider(client):
    store = StoreFactory(providers=False)
    ChannelProvider.objects.create(store=store, channel="sms", provider="twilio", sender="+212500000000")
    client.force_login(UserFactory(is_superuser=True))

    page = client.get(reverse("admin:orders_store_change", args=[store.pk])).content.decode()

    assert "SMS: <strong>twilio</strong> (+212500000000)" in page
    assert "WhatsApp: <strong>no provider configured</strong>" in page
    assert "E-mail: <strong>no provider configured</strong>" in page
    assert f"{reverse('admin:messaging_channelprovider_add')}?store={store.pk}&amp;channel=email" in page


def test_the_store_page_says_the_sandbox_only_simulates(client):
    store = StoreFactory()
    client.force_login(UserFactory(is_superuser=True))

    page = client.get(reverse("admin:orders_store_change", args=[store.pk])).content.decode()

    assert "WhatsApp: <strong>sandbox</strong> — simulated: nothing reaches the customer" in page


def test_the_notification_page_shows_why_nothing_was_sent(client):
    order = OrderFactory(store=StoreFactory(providers=False))
    notification = notification_create(order, event="order_confirmed", key="k1")
    client.force_login(UserFactory(is_superuser=True))

    page = client.get(reverse("admin:messaging_notification_change", args=[notification.pk])).content.decode()

    assert "No provider configured" in page
    assert "no provider configured for whatsapp, sms, email" in page
