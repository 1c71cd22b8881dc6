"""Parcels walked to where a remittance statement finds them, and statements as carriers write them."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from openpyxl import Workbook

from carriers.adapters import TrackingUpdate
from carriers.services import tracking_updates_record
from tests.factories import ShipmentFactory


def walked(shipment, *raw_codes: str, days_ago: float = 20):
    """``shipment`` after its carrier reported ``raw_codes`` (sandbox words), the last one
    ``days_ago`` days ago, an hour apart."""
    last = timezone.now() - timedelta(days=days_ago)
    updates = [
        TrackingUpdate(
            tracking_number=shipment.tracking_number,
            raw_code=raw_code,
            occurred_at=last - timedelta(hours=len(raw_codes) - position),
        )
        for position, raw_code in enumerate(raw_codes, start=1)
    ]
    tracking_updates_record(shipment.account, updates, "sandbox")
    shipment.refresh_from_db()
    return shipment


def delivered_shipment(days_ago: float = 20, **kwargs):
    """A COD parcel (249.00 unless the order says otherwise) delivered ``days_ago`` days ago."""
    return walked(ShipmentFactory(**kwargs), "PICKED_UP", "OUT_FOR_DELIVERY", "DELIVERED", days_ago=days_ago)


def csv_bytes(rows: list[list], *, delimiter: str = ",", bom: bool = False) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    text = buffer.getvalue()
    return ("\ufeff" if bom else "").encode() + text.encode()


def xlsx_bytes(rows: list[list]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


HEADER = ["Tracking", "Montant", "Frais", "Date de versement"]


def statement(*lines, header=HEADER, **kwargs) -> bytes:
    """A CSV statement: ``lines`` are (tracking number, amount, fee, payout date)."""
    return csv_bytes([header, *[list(line) for line in lines]], **kwargs)


MONEY = Decimal("0.01")
