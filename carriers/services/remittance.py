"""COD remittance statements: a carrier's list of the cash it collected and pays out, read, matched
to our shipments by tracking number, previewed, then applied once.

Idempotent twice over: the same file (same bytes, sha256) is one statement per account, and a
line already counted for the same account, tracking number, payout date and amount (a statement
re-exported with other bytes) is kept as a duplicate and not counted again.
"""

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from carriers.models import CarrierAccount, RemittanceLine, RemittanceStatement, Shipment
from carriers.selectors import shipment_expected_cod
from carriers.services.remittance_files import (
    StatementUnreadable,
    columns_for,
    parse_amount,
    parse_date,
    parse_tracking_number,
    resolve_columns,
    statement_rows,
)

logger = logging.getLogger(__name__)

R = RemittanceLine.Result
# A line's note, stored in English and shown translated (orders.stored_words).
NOTE_DUPLICATE = gettext_noop("Already counted, in this statement or an earlier one.")
NOTE_NO_TRACKING_NUMBER = gettext_noop("No tracking number.")
NOTE_NO_AMOUNT = gettext_noop("No amount.")
NOTE_BAD_AMOUNT = gettext_noop("Unreadable amount.")
NOTE_BAD_FEE = gettext_noop("Unreadable fee.")
NOTE_BAD_DATE = gettext_noop("Unreadable payout date.")
COUNTED = (R.MATCHED, R.UNKNOWN)

__all__ = [
    "StatementPreview",
    "StatementUnreadable",
    "remittance_statement_import",
    "remittance_statement_preview",
]


@dataclass
class PreviewLine:
    row_number: int
    tracking_number: str
    collected_amount: Decimal | None
    fee: Decimal
    payout_date: date | None
    raw: dict
    result: str
    note: str = ""
    shipment: Shipment | None = None
    line_key: str = ""

    @property
    def expected(self) -> Decimal | None:
        return shipment_expected_cod(self.shipment) if self.shipment else None


@dataclass
class StatementPreview:
    file_name: str
    sha256: str
    columns: dict  # field → the file's header read for it
    lines: list[PreviewLine]
    existing: RemittanceStatement | None  # this very file, already imported
    counts: dict = field(default_factory=dict)  # result → lines
    collected_total: Decimal = Decimal("0.00")
    fee_total: Decimal = Decimal("0.00")
    expected_total: Decimal = Decimal("0.00")  # what the matched shipments should bring


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def line_key(account: CarrierAccount, tracking_number: str, payout_date, amount) -> str:
    material = f"{account.pk}|{tracking_number}|{payout_date.isoformat() if payout_date else ''}|{amount}"
    return hashlib.sha256(material.encode()).hexdigest()


def _json_safe(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def remittance_statement_preview(account: CarrierAccount, file_name: str, data: bytes) -> StatementPreview:
    """What importing this file would record: each line read, matched and classified, with the
    totals. Writes nothing. Raises StatementUnreadable for a file that cannot be read."""
    headers, rows = statement_rows(file_name, data)
    columns = resolve_columns(headers, columns_for(account.carrier, account.remittance_columns))
    lines = [_read_line(account, number, row, columns) for number, row in rows]

    readable = [line for line in lines if line.result != R.INVALID]
    shipments = {
        shipment.tracking_number: shipment
        for shipment in Shipment.objects.filter(
            account=account, tracking_number__in={line.tracking_number for line in readable}
        )
    }
    already_counted = set(
        RemittanceLine.objects.filter(
            account=account, line_key__in=[line.line_key for line in readable], result__in=COUNTED
        ).values_list("line_key", flat=True)
    )
    seen = set()
    for line in readable:
        if line.line_key in already_counted or line.line_key in seen:
            line.result = R.DUPLICATE
            line.note = NOTE_DUPLICATE
        else:
            line.shipment = shipments.get(line.tracking_number)
            line.result = R.MATCHED if line.shipment else R.UNKNOWN
        seen.add(line.line_key)

    sha256 = file_sha256(data)
    preview = StatementPreview(
        file_name=file_name,
        sha256=sha256,
        columns=columns,
        lines=lines,
        existing=RemittanceStatement.objects.filter(account=account, sha256=sha256).first(),
    )
    for result in R.values:
        preview.counts[result] = sum(1 for line in lines if line.result == result)
    counted = [line for line in lines if line.result in COUNTED]
    preview.collected_total = sum((line.collected_amount for line in counted), Decimal("0.00"))
    preview.fee_total = sum((line.fee for line in counted), Decimal("0.00"))
    matched_shipments = {line.shipment.pk: line.shipment for line in counted if line.shipment}
    preview.expected_total = sum(
        (shipment_expected_cod(shipment) for shipment in matched_shipments.values()), Decimal("0.00")
    )
    return preview


def _read_line(account: CarrierAccount, number: int, row: dict, columns: dict) -> PreviewLine:
    raw = {str(header): _json_safe(value) for header, value in row.items()}
    tracking_number = parse_tracking_number(row.get(columns["tracking_number"]))[:100]
    line = PreviewLine(number, tracking_number, None, Decimal("0.00"), None, raw, R.INVALID)
    problems = []
    if not tracking_number:
        problems.append(NOTE_NO_TRACKING_NUMBER)
    try:
        line.collected_amount = parse_amount(row.get(columns["collected_amount"]))
        if line.collected_amount is None:
            problems.append(NOTE_NO_AMOUNT)
    except ValueError:
        problems.append(NOTE_BAD_AMOUNT)
    if "fee" in columns:
        try:
            line.fee = parse_amount(row.get(columns["fee"])) or Decimal("0.00")
        except ValueError:
            problems.append(NOTE_BAD_FEE)
    if "payout_date" in columns:
        try:
            line.payout_date = parse_date(row.get(columns["payout_date"]))
        except ValueError:
            problems.append(NOTE_BAD_DATE)
    if problems:
        line.note = problems[0]  # the first is enough to fix the row
        return line
    line.result = ""  # decided against the shipments and earlier lines
    line.line_key = line_key(account, tracking_number, line.payout_date, line.collected_amount)
    return line


def remittance_statement_import(
    account: CarrierAccount, file_name: str, data: bytes, actor=None
) -> tuple[RemittanceStatement, bool]:
    """Record the statement and its lines, in one transaction: (statement, created).

    The same file again returns the statement it already made and changes nothing. Imports of one
    account are serialised (its row is locked), so two re-exports of a statement arriving together
    still count each payout once. Raises StatementUnreadable for a file that cannot be read.
    """
    sha256 = file_sha256(data)
    with transaction.atomic():
        CarrierAccount.objects.select_for_update().filter(pk=account.pk).first()
        existing = RemittanceStatement.objects.filter(account=account, sha256=sha256).first()
        if existing is not None:
            return existing, False
        preview = remittance_statement_preview(account, file_name, data)
        now = timezone.now()
        statement = RemittanceStatement.objects.create(
            account=account,
            file_name=file_name[:255],
            sha256=sha256,
            uploaded_by=actor if actor is not None and actor.is_authenticated else None,
            applied_at=now,
            column_mapping=preview.columns,
            line_count=len(preview.lines),
            matched_count=preview.counts[R.MATCHED],
            unknown_count=preview.counts[R.UNKNOWN],
            duplicate_count=preview.counts[R.DUPLICATE],
            invalid_count=preview.counts[R.INVALID],
            collected_total=preview.collected_total,
            fee_total=preview.fee_total,
        )
        RemittanceLine.objects.bulk_create(
            RemittanceLine(
                statement=statement,
                account=account,
                row_number=line.row_number,
                tracking_number=line.tracking_number,
                shipment=line.shipment,
                collected_amount=line.collected_amount,
                fee=line.fee,
                payout_date=line.payout_date,
                raw=line.raw,
                result=line.result,
                note=line.note,
                line_key=line.line_key,
            )
            for line in preview.lines
        )
    logger.info(
        "remittance statement imported account=%s statement=%s lines=%s matched=%s unknown=%s duplicate=%s",
        account.pk,
        statement.pk,
        statement.line_count,
        statement.matched_count,
        statement.unknown_count,
        statement.duplicate_count,
    )
    return statement, True
