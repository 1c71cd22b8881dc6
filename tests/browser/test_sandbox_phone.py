"""The demo's sandbox phone in a real browser: a customer confirms their COD order with a tap."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from messaging.models import InboundMessage, Message, MessagingSettings
from orders.transitions import OrderStatus
from tests.browser.conftest import browser_missing
from tests.factories import StoreFactory, UserFactory, order_in_status
from tests.faults.services import free_port

pytestmark = [
    pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "-"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def agent():
    user = UserFactory()
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="messaging", codename="view_message")
    )
    return user


def test_tapping_confirm_on_the_phone_confirms_the_order_and_the_customer_is_told(
    browser_as, agent, live_server, settings
):
    # given: a COD order awaiting confirmation, whose request the sandbox delivered
    settings.LIVRA_PUBLIC_URL = live_server.url  # where the sandbox posts its customers' replies
    store = StoreFactory(members=[agent])
    MessagingSettings.objects.create(store=store, quiet_hours_start=None, quiet_hours_end=None)
    order = order_in_status(OrderStatus.AWAITING_CONFIRMATION, store=store)
    request = Message.objects.get(order=order, event="confirmation_requested")
    page = browser_as(agent)
    page.goto(reverse("messaging:sandbox-phone", args=[order.customer.pk]))
    asked = page.locator(f'.bubble.out[data-message-id="{request.pk}"]')
    assert order.number in asked.inner_text()

    # when: the customer taps "Confirm" under it
    page.locator(f'.quick-reply[data-message-id="{request.pk}"][data-button="confirm"]').click()

    # then: the reply went through the inbound webhook and confirmed the order ...
    page.locator(".bubble.in").wait_for(timeout=10_000)
    order.refresh_from_db()
    reply = InboundMessage.objects.get(customer=order.customer)
    assert order.status == OrderStatus.CONFIRMED
    assert (reply.webhook is not None, reply.button_payload) == (True, f"confirm:{order.pk}")
    # ... and the refreshed phone shows the reply and the "order confirmed" message after it
    page.reload()
    confirmed = Message.objects.get(order=order, event="order_confirmed")
    assert page.locator(".bubble.in .text").inner_text() == "Confirmer"
    assert order.number in page.locator(f'.bubble.out[data-message-id="{confirmed.pk}"]').inner_text()
    bubbles = page.locator(".bubble").evaluate_all("els => els.map(e => e.dataset.messageId || 'reply')")
    assert bubbles == [str(request.pk), "reply", str(confirmed.pk)]
    assert page.locator(f'#orders [data-order-id="{order.pk}"]').get_attribute("data-status") == "confirmed"


def test_a_reply_livra_cannot_be_reached_for_stays_on_the_phone_as_failed_and_can_be_sent_again(
    browser_as, agent, live_server, settings, reply_task_states
):
    # given: LIVRA_PUBLIC_URL points where nothing listens (a demo started on another port)
    settings.LIVRA_PUBLIC_URL = f"http://127.0.0.1:{free_port()}"
    store = StoreFactory(members=[agent])
    MessagingSettings.objects.create(store=store, quiet_hours_start=None, quiet_hours_end=None)
    order = order_in_status(OrderStatus.AWAITING_CONFIRMATION, store=store)
    page = browser_as(agent, locale="en-US")  # the reply states are read in English below
    page.goto(reverse("messaging:sandbox-phone", args=[order.customer.pk]))

    # when: the customer types "oui"
    page.locator("#reply-text").fill("oui")
    page.locator("#reply-send").click()

    # then: the reply stays on the phone, failed, saying where it went
    failed = page.locator('.bubble.in[data-reply-state="failed"]')
    failed.wait_for(timeout=15_000)
    assert failed.locator(".text").inner_text() == "oui"
    assert f"nothing answered at {settings.LIVRA_PUBLIC_URL}" in failed.locator(".reply-detail").inner_text()
    page.reload()
    assert page.locator('.bubble.in[data-reply-state="failed"]').count() == 1  # a reload keeps it

    # when: Livra is reachable again and the reply is sent again
    settings.LIVRA_PUBLIC_URL = live_server.url
    page.locator(".resend").click()

    # then: Livra has it once, the order is confirmed, and the phone says it was delivered
    delivered = page.locator('.bubble.in[data-reply-state="delivered"]')
    delivered.wait_for(timeout=15_000)
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    assert InboundMessage.objects.filter(customer=order.customer).count() == 1
    assert page.locator('.bubble.in[data-reply-state="failed"]').count() == 0
    assert "delivered to Livra" in delivered.locator(".reply-state").inner_text()
