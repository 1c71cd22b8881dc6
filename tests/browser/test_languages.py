"""The admin in a real browser: Arabic right to left, and the language switch."""

import pytest
from django.urls import reverse

from orders.transitions import OrderStatus
from tests.browser.conftest import browser_missing
from tests.factories import StoreFactory, UserFactory, order_in_status

pytestmark = [
    pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "-"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def superuser():
    order_in_status(OrderStatus.CONFIRMED, store=StoreFactory(name="متجر الأطلس"))
    return UserFactory(is_superuser=True, is_staff=True)


def test_a_browser_in_arabic_gets_the_order_list_right_to_left(browser_as, superuser):
    page = browser_as(superuser, locale="ar-MA")
    page.set_viewport_size({"width": 1400, "height": 900})

    page.goto(reverse("admin:orders_order_changelist"))

    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.evaluate("document.documentElement.lang") == "ar"
    # Right to left: the list's first column is at the right-hand side of the window.
    first, last = page.locator("#result_list thead th").first, page.locator("#result_list thead th").last
    assert first.bounding_box()["x"] > last.bounding_box()["x"]


def test_choosing_french_in_the_switch_shows_the_page_again_in_french(browser_as, superuser):
    page = browser_as(superuser, locale="en-US")
    page.goto(reverse("admin:orders_order_changelist"))
    assert page.evaluate("document.documentElement.lang") == "en"

    with page.expect_navigation():
        page.select_option("#livra-language", "fr")

    assert page.url.endswith(reverse("admin:orders_order_changelist"))
    assert page.evaluate("document.documentElement.lang") == "fr"
    assert page.evaluate("document.documentElement.dir") == "ltr"
