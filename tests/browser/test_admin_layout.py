"""The ops pages at a laptop's width: nothing clipped, no page that scrolls sideways.

Measured in Chromium at 1400×900 (and 1280×900 for the order list): the page is no wider than
the window, and the order list's last column is inside the window and not hidden in its box.
"""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from automations.models import QueueEntry, Rule
from messaging.models import Message, MessagingSettings
from orders.models import OrderEvent
from orders.services import order_transition
from orders.transitions import OrderStatus
from tests.browser.conftest import browser_missing
from tests.factories import CustomerFactory, StoreFactory, UserFactory, order_in_status

pytestmark = [
    pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "-"),
    pytest.mark.django_db(transaction=True),
]

LONG_WORD = "x" * 300  # a provider error or a payload with no place to break a line
PAGE_WIDTH = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"


@pytest.fixture
def superuser():
    return UserFactory(is_superuser=True, is_staff=True)


@pytest.fixture
def orders():
    """Orders with the widest things the list and the order page show."""
    store = StoreFactory(name="Atlas Souk Marrakech & Casablanca")
    MessagingSettings.objects.create(store=store, quiet_hours_start=None, quiet_hours_end=None)
    customer = CustomerFactory(store=store, name="Fatima Zahra El Ouazzani Bennani")
    returned = order_in_status(OrderStatus.RTO_INITIATED, store=store, customer=customer)
    awaiting = order_in_status(OrderStatus.AWAITING_CONFIRMATION, store=store)
    order_transition(returned, "mark_returned", source=OrderEvent.Source.CARRIER, reason=LONG_WORD)
    Message.objects.filter(order=returned).update(error=LONG_WORD, error_code="carrier_" + "y" * 30)
    QueueEntry.objects.create(
        order=awaiting, priority=50, reason="no answer to the confirmation request in 2 h"
    )
    return returned, awaiting


def open_at(browser_as, user, width: int, path: str):
    page = browser_as(user)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(path)
    return page


@pytest.mark.parametrize("width", [1400, 1280])
def test_the_order_list_shows_every_column_inside_the_window(browser_as, superuser, orders, width):
    page = open_at(browser_as, superuser, width, reverse("admin:orders_order_changelist"))

    scroll_width, client_width = page.evaluate(PAGE_WIDTH)
    last_column = page.locator("#result_list thead th").last.bounding_box()
    results = page.locator("#changelist-form .results").evaluate("box => [box.scrollWidth, box.clientWidth]")
    assert scroll_width <= client_width
    assert "column-placed" in page.locator("#result_list thead th").last.get_attribute("class")
    assert last_column["x"] + last_column["width"] <= client_width
    assert results[0] <= results[1]  # the table is not cut off inside its box either


def test_the_order_page_does_not_scroll_sideways(browser_as, superuser, orders):
    returned, _ = orders
    page = open_at(browser_as, superuser, 1400, reverse("admin:orders_order_change", args=[returned.pk]))

    scroll_width, client_width = page.evaluate(PAGE_WIDTH)
    assert page.locator("#events-group").is_visible() and page.locator("#messages-group").is_visible()
    assert scroll_width <= client_width


def test_the_sandbox_phone_does_not_scroll_sideways(browser_as, orders):
    _, awaiting = orders
    agent = UserFactory(stores=[awaiting.store])
    agent.user_permissions.add(
        Permission.objects.get(content_type__app_label="messaging", codename="view_message")
    )
    for path in (
        reverse("messaging:sandbox-phone-customers"),
        reverse("messaging:sandbox-phone", args=[awaiting.customer.pk]),
    ):
        page = open_at(browser_as, agent, 1400, path)

        scroll_width, client_width = page.evaluate(PAGE_WIDTH)
        assert scroll_width <= client_width, path
    phone, orders_panel = page.locator(".phone").bounding_box(), page.locator("#orders").bounding_box()
    assert orders_panel["x"] >= phone["x"] + phone["width"]  # beside the phone, not under it


def test_the_confirmation_queue_shows_every_column_inside_the_window(browser_as, superuser, orders):
    # A rule with a long name: Django keeps foreign-key columns on one line.
    entry = QueueEntry.objects.get()
    entry.rule = Rule.objects.filter(store=entry.order.store).order_by("-pk").first()
    entry.rule.name = "An unclear answer to the confirmation request goes to the queue"
    entry.rule.save(update_fields=["name"])
    entry.save(update_fields=["rule"])
    page = open_at(browser_as, superuser, 1400, reverse("admin:automations_queueentry_changelist"))

    scroll_width, client_width = page.evaluate(PAGE_WIDTH)
    last_column = page.locator("#result_list thead th").last.bounding_box()
    results = page.locator("#changelist-form .results").evaluate("box => [box.scrollWidth, box.clientWidth]")
    assert page.locator("#result_list tbody tr").count() == 1
    assert scroll_width <= client_width
    assert last_column["x"] + last_column["width"] <= client_width
    assert results[0] <= results[1]  # nothing cut off inside its box
