"""Amounts and dates on admin pages follow the reader's language."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import formats, translation

from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client):
    client.force_login(UserFactory(is_superuser=True))
    return client


@pytest.mark.parametrize(
    ("language", "shown"),
    [("en", "1,249.50 MAD"), ("fr", "1\u00a0249,50 MAD"), ("ar", "1\u202f249,50 MAD")],
)
def test_the_order_list_shows_the_total_grouped_with_the_languages_marks(logged_in, language, shown):
    OrderFactory(total_amount=Decimal("1249.50"), currency="MAD")

    response = logged_in.get(reverse("admin:orders_order_changelist"), HTTP_ACCEPT_LANGUAGE=language)

    assert shown in response.content.decode()


@pytest.mark.parametrize(
    ("language", "shown"),
    [("en", "Dec. 3, 2026, 2:05 p.m."), ("fr", "3 décembre 2026 14:05"), ("ar", "3 ديسمبر 2026، 14:05")],
)
def test_a_date_and_time_reads_in_the_languages_order(language, shown):
    moment = datetime.datetime(2026, 12, 3, 14, 5)

    with translation.override(language):
        assert formats.date_format(moment, "DATETIME_FORMAT") == shown
