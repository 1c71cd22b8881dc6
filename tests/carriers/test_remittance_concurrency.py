"""One statement imported twice at the same moment (two tabs, two agents), on PostgreSQL."""

from datetime import datetime

import pytest

from carriers.models import RemittanceLine, RemittanceStatement
from carriers.services.remittance import remittance_statement_import
from tests.carriers.remittance_helpers import delivered_shipment, statement, xlsx_bytes
from tests.carriers.test_tracking_concurrency import run_side_by_side

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_same_file_imported_twice_at_once_makes_one_statement():
    shipment = delivered_shipment()
    data = statement([shipment.tracking_number, "249.00", "25.00", "15/11/2026"])

    run_side_by_side(
        lambda: remittance_statement_import(shipment.account, "a.csv", data),
        lambda: remittance_statement_import(shipment.account, "a.csv", data),
    )

    assert RemittanceStatement.objects.count() == 1
    assert RemittanceLine.objects.count() == 1


def test_two_exports_of_one_statement_imported_at_once_count_each_payout_once():
    shipment = delivered_shipment()
    as_csv = statement([shipment.tracking_number, "249.00", "25.00", "15/11/2026"])
    as_xlsx = xlsx_bytes(
        [
            ["Tracking", "Montant", "Frais", "Date de versement"],
            [shipment.tracking_number, 249, 25, datetime(2026, 11, 15)],
        ]
    )

    run_side_by_side(
        lambda: remittance_statement_import(shipment.account, "a.csv", as_csv),
        lambda: remittance_statement_import(shipment.account, "a.xlsx", as_xlsx),
    )

    assert RemittanceStatement.objects.count() == 2
    assert RemittanceLine.objects.filter(result=RemittanceLine.Result.MATCHED).count() == 1
    assert RemittanceLine.objects.filter(result=RemittanceLine.Result.DUPLICATE).count() == 1
