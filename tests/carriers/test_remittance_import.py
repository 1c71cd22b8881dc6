"""COD remittance statements: read (CSV, XLSX), matched by tracking number, previewed, applied once."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from carriers.models import RemittanceLine, RemittanceStatement
from carriers.services.remittance import (
    StatementUnreadable,
    remittance_statement_import,
    remittance_statement_preview,
)
from tests.carriers.remittance_helpers import csv_bytes, delivered_shipment, statement, xlsx_bytes
from tests.factories import CarrierAccountFactory, UserFactory

pytestmark = pytest.mark.django_db

R = RemittanceLine.Result


@pytest.fixture
def shipment():
    return delivered_shipment()


def test_a_csv_statement_is_matched_by_tracking_number_with_its_amount_fee_and_payout_date(shipment):
    data = statement([shipment.tracking_number, "249,00", "25,00", "15/11/2026"], delimiter=";")
    actor = UserFactory()

    imported, created = remittance_statement_import(shipment.account, "versement.csv", data, actor)

    [line] = imported.lines.all()
    assert created is True
    assert (line.result, line.shipment, line.collected_amount, line.fee, line.payout_date) == (
        R.MATCHED,
        shipment,
        Decimal("249.00"),
        Decimal("25.00"),
        date(2026, 11, 15),
    )
    assert line.raw == {
        "Tracking": shipment.tracking_number,
        "Montant": "249,00",
        "Frais": "25,00",
        "Date de versement": "15/11/2026",
    }
    assert (imported.uploaded_by, imported.matched_count, imported.collected_total) == (
        actor,
        1,
        Decimal("249.00"),
    )
    assert imported.applied_at is not None
    assert imported.column_mapping["payout_date"] == "Date de versement"


def test_an_xlsx_statement_is_read_with_its_dates_and_numbers(shipment):
    data = xlsx_bytes(
        [
            ["Code d'envoi", "COD amount", "Fees", "Payout date"],
            [shipment.tracking_number, 249, 25.5, datetime(2026, 11, 16)],
        ]
    )

    imported, _ = remittance_statement_import(shipment.account, "statement.xlsx", data)

    [line] = imported.lines.all()
    assert (line.shipment, line.collected_amount, line.fee, line.payout_date) == (
        shipment,
        Decimal("249.00"),
        Decimal("25.50"),
        date(2026, 11, 16),
    )


def test_headers_are_matched_whatever_their_case_accents_and_spaces(shipment):
    data = csv_bytes(
        [
            ["  TRACKING ", "montant", "FRAIS", "date  de   VERSEMENT"],
            [shipment.tracking_number, "249", "0", "2026-11-15"],
        ],
        bom=True,
    )

    preview = remittance_statement_preview(shipment.account, "s.csv", data)

    assert [line.result for line in preview.lines] == [R.MATCHED]
    assert preview.lines[0].payout_date == date(2026, 11, 15)


def test_an_accounts_own_columns_win_over_the_carriers_defaults(shipment):
    account = shipment.account
    account.remittance_columns = {"tracking_number": "Réf. colis", "collected_amount": "Encaissé"}
    account.save()
    data = csv_bytes([["Réf. colis", "Encaissé", "Tracking"], [shipment.tracking_number, "249", "IGNORED"]])

    preview = remittance_statement_preview(account, "s.csv", data)

    assert preview.columns == {"tracking_number": "Réf. colis", "collected_amount": "Encaissé"}
    assert preview.lines[0].shipment == shipment


def test_a_statement_without_a_tracking_column_is_refused_with_the_headers_it_has(shipment):
    data = csv_bytes([["Colis", "Montant"], ["X", "1"]])

    with pytest.raises(StatementUnreadable, match=r"tracking_number.*Colis, Montant"):
        remittance_statement_preview(shipment.account, "s.csv", data)


def test_the_preview_writes_nothing_and_shows_counts_and_totals(shipment):
    data = statement(
        [shipment.tracking_number, "200.00", "25.00", "15/11/2026"],
        ["NOT-OURS-1", "99.00", "10.00", "15/11/2026"],
        ["", "12.00", "1.00", "15/11/2026"],
    )

    preview = remittance_statement_preview(shipment.account, "s.csv", data)

    assert not RemittanceStatement.objects.exists() and not RemittanceLine.objects.exists()
    assert [line.result for line in preview.lines] == [R.MATCHED, R.UNKNOWN, R.INVALID]
    assert (preview.counts[R.MATCHED], preview.counts[R.UNKNOWN], preview.counts[R.INVALID]) == (1, 1, 1)
    assert preview.collected_total == Decimal("299.00")
    assert preview.expected_total == Decimal("249.00")
    assert preview.lines[0].expected == Decimal("249.00")


def test_the_same_file_imported_twice_changes_nothing(shipment):
    data = statement([shipment.tracking_number, "249.00", "25.00", "15/11/2026"])
    first, _ = remittance_statement_import(shipment.account, "s.csv", data)

    again, created = remittance_statement_import(shipment.account, "renamed.csv", data)

    assert (again, created) == (first, False)
    assert RemittanceStatement.objects.count() == 1
    assert RemittanceLine.objects.count() == 1


def test_the_preview_of_a_file_already_imported_says_so(shipment):
    data = statement([shipment.tracking_number, "249.00", "25.00", "15/11/2026"])
    first, _ = remittance_statement_import(shipment.account, "s.csv", data)

    assert remittance_statement_preview(shipment.account, "s.csv", data).existing == first


def test_a_re_exported_statement_with_other_bytes_counts_each_payout_once(shipment):
    line = [shipment.tracking_number, "249,00", "25,00", "15/11/2026"]
    remittance_statement_import(shipment.account, "s.csv", statement(line, delimiter=";"))
    reexported = xlsx_bytes(
        [
            ["Tracking", "Montant", "Frais", "Date de versement"],
            [shipment.tracking_number, 249, 25, datetime(2026, 11, 15)],
        ]
    )

    second, created = remittance_statement_import(shipment.account, "s.xlsx", reexported)

    assert created is True
    assert [line.result for line in second.lines.all()] == [R.DUPLICATE]
    assert (second.matched_count, second.duplicate_count, second.collected_total) == (0, 1, Decimal("0.00"))
    assert RemittanceLine.objects.filter(shipment=shipment, result=R.MATCHED).count() == 1


def test_the_same_line_twice_in_one_statement_is_counted_once(shipment):
    line = [shipment.tracking_number, "249.00", "25.00", "15/11/2026"]

    imported, _ = remittance_statement_import(shipment.account, "s.csv", statement(line, line))

    assert [line.result for line in imported.lines.all()] == [R.MATCHED, R.DUPLICATE]


def test_an_unknown_tracking_number_is_kept_and_flagged(shipment):
    data = statement(["NOT-OURS-1", "99.00", "10.00", "15/11/2026"])

    imported, _ = remittance_statement_import(shipment.account, "s.csv", data)

    [line] = imported.lines.all()
    assert (line.result, line.shipment, line.tracking_number) == (R.UNKNOWN, None, "NOT-OURS-1")
    assert imported.unknown_count == 1


def test_another_accounts_parcel_is_not_matched(shipment):
    other_account = CarrierAccountFactory(store=shipment.account.store)

    imported, _ = remittance_statement_import(
        other_account, "s.csv", statement([shipment.tracking_number, "249", "0", "15/11/2026"])
    )

    assert imported.lines.get().result == R.UNKNOWN


def test_the_same_file_for_two_accounts_is_two_statements(shipment):
    data = statement([shipment.tracking_number, "249", "0", "15/11/2026"])
    other_account = CarrierAccountFactory(store=shipment.account.store)

    remittance_statement_import(shipment.account, "s.csv", data)
    _, created = remittance_statement_import(other_account, "s.csv", data)

    assert created is True


def test_a_line_with_an_impossible_amount_is_kept_as_unreadable_and_the_rest_imported(shipment):
    data = statement(
        [shipment.tracking_number, "249.00", "25.00", "15/11/2026"],
        ["NOT-OURS", "123456789012.00", "0", "15/11/2026"],
    )

    imported, _ = remittance_statement_import(shipment.account, "s.csv", data)

    assert [(line.result, line.note) for line in imported.lines.all()] == [
        (R.MATCHED, ""),
        (R.INVALID, "Unreadable amount."),
    ]
