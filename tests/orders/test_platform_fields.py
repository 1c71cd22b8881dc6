"""The payload readers every store platform adapter shares (orders.platforms.fields)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from orders.platforms import MalformedPayload, fields


def test_money_reads_a_json_number_through_its_text_not_as_a_float():
    assert fields.money(21.99, "price") == Decimal("21.99")


def test_money_refuses_a_negative_amount():
    with pytest.raises(MalformedPayload, match="total is a negative amount"):
        fields.money("-1.00", "total")


def test_money_that_is_not_a_finite_number_is_refused_naming_the_field_and_its_resource():
    with pytest.raises(MalformedPayload, match=r"^order 'line_items\[0\]\.price' is not an amount of money$"):
        fields.money("NaN", "line_items[0].price", resource="order")


def test_text_reads_any_value_but_null_through_str():
    assert [fields.text(value) for value in (" Salma ", 42, 1.5, True, None)] == [
        "Salma",
        "42",
        "1.5",
        "True",
        "",
    ]


def test_strict_text_reads_only_strings_and_whole_numbers():
    assert [fields.text(value, strict=True) for value in (" Salma ", 42, 1.5, True)] == [
        "Salma",
        "42",
        "",
        "",
    ]


def test_first_text_skips_values_without_text():
    assert fields.first_text(None, "  ", "0612345678", "0699999999") == "0612345678"


def test_an_identifier_that_must_be_digits_refuses_letters():
    with pytest.raises(MalformedPayload, match="id is not a number"):
        fields.identifier("abc", "id", digits_only=True)


def test_a_time_without_an_offset_is_read_in_the_zone_given():
    casablanca = ZoneInfo("Africa/Casablanca")

    read = fields.date_time("2025-06-10T14:32:07", "created_at", naive_zone=casablanca)

    assert read == datetime(2025, 6, 10, 14, 32, 7, tzinfo=casablanca)


def test_a_time_without_an_offset_is_refused_when_no_zone_is_given():
    with pytest.raises(MalformedPayload, match="placed_at must be an ISO 8601 date and time with an offset"):
        fields.date_time("2025-06-10T14:32:07", "placed_at")


def test_a_time_at_an_offset_postgresql_refuses_is_malformed_naming_the_field():
    with pytest.raises(MalformedPayload, match=r"placed_at: Give a UTC offset between -15:59 and \+15:59"):
        fields.date_time("2000-01-14T00:09:21-18:06", "placed_at")


def test_a_time_in_year_one_read_in_a_zone_ahead_of_utc_is_malformed():
    with pytest.raises(MalformedPayload, match="created_at: Give a time between 1970 and 2100"):
        fields.date_time("0001-01-01T00:00:00", "created_at", naive_zone=ZoneInfo("Africa/Casablanca"))


def test_a_time_at_the_furthest_real_offset_is_read():
    assert fields.date_time("2025-06-10T14:32:07+14:00", "placed_at").utcoffset() == timedelta(hours=14)


def test_an_empty_optional_date_is_unset():
    assert fields.optional_date_time("", "updated_at", naive_zone=UTC) is None


def test_a_missing_nested_object_reads_as_empty():
    assert fields.json_object(None, "billing") == {}


def test_a_required_nested_object_cannot_be_null():
    with pytest.raises(MalformedPayload, match="customer is null, not an object"):
        fields.json_object(None, "customer", required=True)


def test_an_array_names_the_element_that_is_not_an_object():
    with pytest.raises(MalformedPayload, match=r"items\[1\] is a string, not an object"):
        fields.object_array([{"title": "Caftan"}, "Babouches"], "items")


def test_a_quantity_must_be_a_whole_number_not_a_boolean():
    with pytest.raises(MalformedPayload, match="quantity must be a whole number, 0 or more"):
        fields.whole_number(True, "quantity")


@pytest.mark.parametrize(
    ("answer", "meaning"), [(" Oui ", True), ("نعم", True), ("non", False), ("maybe", None)]
)
def test_yes_or_no_reads_yes_words_no_words_and_neither(answer, meaning):
    assert fields.yes_or_no(answer) is meaning


def test_yes_or_no_reads_only_the_words_it_is_given():
    assert fields.yes_or_no("y", yes=frozenset({"yes"}), no=frozenset({"no"})) is None
