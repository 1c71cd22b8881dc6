"""Reconciliation: per parcel expected / remitted / short / over / missing, the overdue list and
each carrier account's totals."""

from decimal import Decimal

import pytest

from carriers.models import CarrierAccount, RemittanceStatus
from carriers.selectors import (
    carrier_account_remittance_totals,
    shipment_list_remittance_mismatched,
    shipment_list_remittance_overdue,
    shipment_remittance,
)
from carriers.services.remittance import remittance_statement_import
from tests.carriers.remittance_helpers import delivered_shipment, statement, walked
from tests.factories import CarrierAccountFactory, ShipmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    return CarrierAccountFactory()


def remit(account, *lines):
    """Import a statement paying ``lines`` as (shipment or tracking number, amount)."""
    rows = [
        [getattr(target, "tracking_number", target), amount, "25.00", "15/11/2026"]
        for target, amount in lines
    ]
    return remittance_statement_import(account, f"s{len(rows)}-{rows[0][0]}.csv", statement(*rows))[0]


def reconciled(shipment):
    row = shipment_remittance(shipment)
    return row.expected, row.remitted, row.remittance_status


def test_a_delivered_cod_parcel_paid_in_full_is_remitted(account):
    shipment = delivered_shipment(account=account)

    remit(account, (shipment, "249.00"))

    row = shipment_remittance(shipment)
    assert (row.expected, row.remitted, row.remitted_fee, row.remittance_status) == (
        Decimal("249.00"),
        Decimal("249.00"),
        Decimal("25.00"),
        RemittanceStatus.REMITTED,
    )


def test_a_parcel_paid_less_than_collected_is_short(account):
    shipment = delivered_shipment(account=account)

    remit(account, (shipment, "200.00"))

    row = shipment_remittance(shipment)
    assert (row.remittance_status, row.difference) == (RemittanceStatus.SHORT, Decimal("-49.00"))


def test_a_parcel_paid_more_than_collected_is_over(account):
    shipment = delivered_shipment(account=account)

    remit(account, (shipment, "300.00"))

    assert reconciled(shipment) == (Decimal("249.00"), Decimal("300.00"), RemittanceStatus.OVER)


def test_a_parcel_paid_in_two_payouts_adds_them_up(account):
    shipment = delivered_shipment(account=account)

    remit(account, (shipment, "100.00"))
    remit(account, (shipment, "149.00"), ("OTHER", "1"))

    assert reconciled(shipment)[1:] == (Decimal("249.00"), RemittanceStatus.REMITTED)


def test_a_delivered_parcel_no_statement_paid_is_missing(account):
    shipment = delivered_shipment(account=account)

    assert reconciled(shipment) == (Decimal("249.00"), Decimal("0.00"), RemittanceStatus.MISSING)


def test_a_parcel_not_delivered_expects_nothing(account):
    shipment = walked(ShipmentFactory(account=account), "PICKED_UP")

    assert reconciled(shipment) == (Decimal("0.00"), Decimal("0.00"), "")


def test_the_overdue_list_holds_delivered_cod_parcels_unpaid_after_n_days(account):
    overdue = delivered_shipment(account=account, days_ago=20)
    recent = delivered_shipment(account=account, days_ago=3)  # not yet due
    paid = delivered_shipment(account=account, days_ago=30)
    walked(ShipmentFactory(account=account), "PICKED_UP", days_ago=40)  # not delivered
    remit(account, (paid, "249.00"))

    listed = shipment_list_remittance_overdue(CarrierAccount.objects.all(), days=14)

    assert list(listed) == [overdue]
    assert list(shipment_list_remittance_overdue(CarrierAccount.objects.all(), days=2)) == [overdue, recent]


def test_the_overdue_days_come_from_the_setting(account, settings):
    shipment = delivered_shipment(account=account, days_ago=10)
    settings.LIVRA_REMITTANCE_OVERDUE_DAYS = 7

    assert list(shipment_list_remittance_overdue(CarrierAccount.objects.all())) == [shipment]


def test_short_and_over_parcels_are_listed_as_mismatched(account):
    short, over, paid = (delivered_shipment(account=account) for _ in range(3))
    remit(account, (short, "100"), (over, "300"), (paid, "249"))

    assert set(shipment_list_remittance_mismatched(CarrierAccount.objects.all())) == {short, over}


def test_each_accounts_totals_come_from_one_query(account, django_assert_num_queries):
    collected = [delivered_shipment(account=account) for _ in range(2)]
    walked(ShipmentFactory(account=account), "PICKED_UP", "OUT_FOR_DELIVERY")  # in transit
    walked(ShipmentFactory(account=account), "PICKED_UP", "RETURNING")  # coming back: no cash
    walked(ShipmentFactory(account=account), "PICKED_UP", "LOST")
    remit(account, (collected[0], "249.00"), ("NOT-OURS", "99.00"))
    other = CarrierAccountFactory()
    delivered_shipment(account=other)

    with django_assert_num_queries(1):
        totals = {row.pk: row for row in carrier_account_remittance_totals(CarrierAccount.objects.all())}

    mine = totals[account.pk]
    assert (mine.collected, mine.in_transit, mine.remitted, mine.pending, mine.lost) == (
        Decimal("498.00"),
        Decimal("249.00"),
        Decimal("249.00"),
        Decimal("249.00"),
        Decimal("249.00"),
    )
    assert (totals[other.pk].collected, totals[other.pk].pending) == (Decimal("249.00"), Decimal("249.00"))
