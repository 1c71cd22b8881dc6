"""Reading statements: amounts, dates and separators the ways carriers write them."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from carriers.services.remittance_files import parse_amount, parse_date, statement_rows
from tests.carriers.remittance_helpers import csv_bytes


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        ("1 249,00", "1249.00"),
        ("1\u202f249,00", "1249.00"),
        ("1,249.00", "1249.00"),
        ("1.249,00", "1249.00"),
        ("1,249", "1249.00"),
        ("249,5", "249.50"),
        ("249 MAD", "249.00"),
        ("249,00 DH", "249.00"),
        ("DZD 3 500", "3500.00"),
        ("₹1,200.50", "1200.50"),
        ("(12.00)", "-12.00"),
        ("-12", "-12.00"),
        (249, "249.00"),
        (249.5, "249.50"),
    ],
)
def test_amounts_are_read_the_ways_statements_write_them(written, amount):
    assert parse_amount(written) == Decimal(amount)


def test_an_empty_amount_is_none_and_words_are_not_an_amount():
    assert parse_amount("  ") is None
    with pytest.raises(ValueError):
        parse_amount("pending")


@pytest.mark.parametrize("written", ["12345678901", 1e12, float("nan")])
def test_an_amount_too_large_for_any_parcel_is_refused(written):
    with pytest.raises(ValueError):
        parse_amount(written)


@pytest.mark.parametrize(
    ("written", "day"),
    [
        ("15/11/2026", date(2026, 11, 15)),
        ("15-11-2026", date(2026, 11, 15)),
        ("15.11.2026", date(2026, 11, 15)),
        ("15/11/26", date(2026, 11, 15)),
        ("2026-11-15", date(2026, 11, 15)),
        ("2026-11-15T10:30:00Z", date(2026, 11, 15)),
        ("15/11/2026 10:30", date(2026, 11, 15)),
        (datetime(2026, 11, 15, 10, 30), date(2026, 11, 15)),
        (46341, date(2026, 11, 15)),  # an Excel serial day number
        ("46341", date(2026, 11, 15)),
    ],
)
def test_payout_dates_are_read_day_first_iso_or_as_excel_numbers(written, day):
    assert parse_date(written) == day


def test_a_date_that_is_not_one_is_refused():
    with pytest.raises(ValueError):
        parse_date("next week")


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_separators_are_found(delimiter):
    headers, rows = statement_rows(
        "s.csv", csv_bytes([["Tracking", "Montant"], ["YAL-1", "249,00"]], delimiter=delimiter)
    )

    assert headers == ["Tracking", "Montant"]
    assert rows == [(2, {"Tracking": "YAL-1", "Montant": "249,00"})]


def test_a_utf8_bom_and_blank_rows_are_left_out():
    data = csv_bytes([["Tracking", "Montant"], ["", ""], ["YAL-1", "1"]], bom=True)

    headers, rows = statement_rows("s.csv", data)

    assert headers[0] == "Tracking"
    assert rows == [(3, {"Tracking": "YAL-1", "Montant": "1"})]
