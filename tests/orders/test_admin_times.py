"""Times in the ops agents' admin: local to the store on the order page, localized, to the minute."""

import datetime
import re
import zoneinfo

import pytest
import time_machine
from django.test import override_settings
from django.urls import reverse
from django.utils import formats, translation

from messaging.models import Message
from orders.models import OrderEvent
from orders.services import order_transition
from tests.factories import OrderFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

# 20:30:15.123456 in Casablanca (UTC+1 outside Ramadan), 01:00:15 the next day in Kolkata (UTC+5:30).
EVENT_AT = datetime.datetime(2026, 6, 10, 19, 30, 15, 123456, tzinfo=datetime.UTC)
ISO_OR_MICROSECONDS = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?\+00:00|\.123456")
KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")
CASABLANCA = zoneinfo.ZoneInfo("Africa/Casablanca")


def shown(moment: datetime.datetime, tz, language: str = "en-us") -> str:
    """``moment`` as the language's DATETIME_FORMAT writes it on ``tz``'s clock."""
    with translation.override(language):
        return formats.date_format(moment.astimezone(tz), "DATETIME_FORMAT")


def superuser_page(client, url: str) -> str:
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def timeline_cell(page: str) -> str:
    return re.search(r'<td class="field-when">(.*?)</td>', page, re.DOTALL).group(1)


@pytest.fixture
def order_in_kolkata(django_capture_on_commit_callbacks):
    order = OrderFactory(store=StoreFactory(slug="mumbai-bazaar", time_zone="Asia/Kolkata"))
    with time_machine.travel(EVENT_AT, tick=False), django_capture_on_commit_callbacks(execute=True):
        order_transition(order, "request_confirmation", source=OrderEvent.Source.SYSTEM)
    return order


def test_the_timeline_shows_each_event_in_the_stores_time_zone_without_seconds(client, order_in_kolkata):
    page = superuser_page(client, reverse("admin:orders_order_change", args=[order_in_kolkata.pk]))

    cell = timeline_cell(page)
    assert shown(EVENT_AT, KOLKATA) == "June 11, 2026, 1 a.m."
    assert shown(EVENT_AT, KOLKATA) in cell
    assert 'datetime="2026-06-11T01:00:15+05:30"' in cell
    assert "Times on this page are in the store's time zone, Asia/Kolkata." in page


def test_no_time_on_the_order_page_is_printed_in_utc_or_with_microseconds(client, order_in_kolkata):
    page = superuser_page(client, reverse("admin:orders_order_change", args=[order_in_kolkata.pk]))

    assert ISO_OR_MICROSECONDS.search(page) is None


def test_the_messages_status_history_reads_in_the_stores_time_zone(client, order_in_kolkata):
    message = Message.objects.get(order=order_in_kolkata)
    assert message.status_changes.exists()

    page = superuser_page(client, reverse("admin:orders_order_change", args=[order_in_kolkata.pk]))

    history = re.search(r'<td class="field-status_history">(.*?)</td>', page, re.DOTALL).group(1)
    assert history.count(shown(EVENT_AT, KOLKATA)) == message.status_changes.count()


@override_settings(LANGUAGE_CODE="fr")
def test_timeline_times_follow_the_active_languages_format(client, order_in_kolkata):
    page = superuser_page(client, reverse("admin:orders_order_change", args=[order_in_kolkata.pk]))

    assert shown(EVENT_AT, KOLKATA, "fr") == "11 juin 2026 01:00"
    assert shown(EVENT_AT, KOLKATA, "fr") in timeline_cell(page)


def test_the_order_list_shows_when_each_order_was_placed_in_the_sites_time_zone(client):
    OrderFactory(number="#7001", placed_at=EVENT_AT)

    page = superuser_page(client, reverse("admin:orders_order_changelist"))

    placed = re.search(r'<td class="field-placed">(.*?)</td>', page, re.DOTALL).group(1)
    assert shown(EVENT_AT, CASABLANCA) in placed  # TIME_ZONE
    assert 'datetime="2026-06-10T20:30:15+01:00"' in placed
    assert ISO_OR_MICROSECONDS.search(page) is None


def test_the_order_list_puts_the_store_under_the_number_and_the_phone_under_the_name(client):
    order = OrderFactory(number="#7002")

    page = superuser_page(client, reverse("admin:orders_order_changelist"))

    headers = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page)
    assert headers == ["order_column", "customer_column", "payment", "total", "status_badge", "placed"]
    assert f"{order.store.name}</small>" in page
    assert f'dir="ltr">{order.customer.phone}</span>' in page
