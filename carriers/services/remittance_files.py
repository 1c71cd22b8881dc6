"""Reading carriers' remittance statements: CSV or XLSX rows, headers matched loosely, amounts and
dates read the many ways carriers write them. Pure: no database."""

import csv
import io
import re
import unicodedata
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext, gettext_noop
from openpyxl import load_workbook

# The fields a statement line gives, in the order they are shown.
FIELDS = ("tracking_number", "collected_amount", "fee", "payout_date")
REQUIRED_FIELDS = ("tracking_number", "collected_amount")

# Headers tried for every carrier, after its own (below). UNVERIFIED: no carrier publishes its
# statement's layout; these are plausible French and English headers, the first ones the Yalidine
# and Moroccan carriers' merchant panels are reported to export, to be confirmed (or overridden per
# account, CarrierAccount.remittance_columns) with a real statement.
COMMON_COLUMNS = {
    "tracking_number": [
        "Tracking",
        "Tracking number",
        "Numéro de suivi",
        "N° de suivi",
        "Code d'envoi",
        "Code",
        "Code colis",
        "AWB",
        "Waybill",
    ],
    "collected_amount": [
        "Montant",
        "Montant encaissé",
        "Montant collecté",
        "Prix",
        "COD",
        "COD amount",
        "Collected amount",
        "Amount",
    ],
    "fee": ["Frais", "Frais de livraison", "Tarif", "Fees", "Fee", "Delivery fee", "Shipping fee"],
    "payout_date": [
        "Date de versement",
        "Date de paiement",
        "Date du virement",
        "Payout date",
        "Payment date",
        "Remittance date",
        "Date",
    ],
}
# Each carrier's own headers, tried first. UNVERIFIED as above (reference §4 "Remittance": only
# Yalidine has remittance by API; the others send statements whose columns are not documented).
CARRIER_COLUMNS = {
    "yalidine": {
        "tracking_number": ["Tracking"],
        "collected_amount": ["Montant", "Prix"],
        "fee": ["Frais de livraison", "Frais"],
        "payout_date": ["Date de paiement"],
    },
    "ameex": {"tracking_number": ["Code d'envoi"], "collected_amount": ["Montant"], "fee": ["Frais"]},
    "ozon": {"tracking_number": ["Tracking"], "collected_amount": ["Prix"], "fee": ["Frais"]},
    "sendit": {"tracking_number": ["Code"], "collected_amount": ["Montant"], "fee": ["Frais"]},
    "shiprocket": {
        "tracking_number": ["AWB"],
        "collected_amount": ["COD amount"],
        "fee": ["Deductions"],
        "payout_date": ["Remittance date"],
    },
    "delhivery": {"tracking_number": ["Waybill"], "collected_amount": ["COD amount"]},
}

MAX_ROWS = 20_000
MAX_AMOUNT = Decimal("1e10")


class StatementUnreadable(ValueError):
    """The file is not a statement Livra can read. ``words`` (English, marked with gettext_noop)
    and ``params`` say why; ``shown()`` in the reader's language."""

    def __init__(self, words: str, **params):
        super().__init__(words % params if params else words)
        self.words, self.params = words, params

    def shown(self) -> str:
        return gettext(self.words) % self.params if self.params else gettext(self.words)


def header_key(header) -> str:
    """A header as matching compares it: no case, accents, punctuation or extra spaces."""
    decomposed = unicodedata.normalize("NFKD", str(header or ""))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain).split())


def columns_for(carrier: str, overrides: dict | None = None) -> dict[str, list[str]]:
    """The headers to try for each field: the account's own first, then the carrier's, then the
    common ones."""
    columns = {}
    for field in FIELDS:
        own = (overrides or {}).get(field) or []
        own = [own] if isinstance(own, str) else list(own)
        columns[field] = own + CARRIER_COLUMNS.get(carrier, {}).get(field, []) + COMMON_COLUMNS[field]
    return columns


def resolve_columns(headers: list, columns: dict[str, list[str]]) -> dict[str, str]:
    """field → the file's header that holds it (each header used once, the first candidate wins)."""
    by_key = {}
    for header in headers:
        by_key.setdefault(header_key(header), header)
    found, used = {}, set()
    for field in FIELDS:
        for candidate in columns[field]:
            header = by_key.get(header_key(candidate))
            if header is not None and header not in used:
                found[field] = header
                used.add(header)
                break
    missing = [field for field in REQUIRED_FIELDS if field not in found]
    if missing:
        raise StatementUnreadable(
            gettext_noop("No column for %(fields)s among the file's headers: %(headers)s."),
            fields=", ".join(missing),
            headers=", ".join(str(header) for header in headers if header),
        )
    return found


# --- files -----------------------------------------------------------------------------------
def statement_rows(file_name: str, data: bytes) -> tuple[list[str], list[tuple[int, dict]]]:
    """The file's headers and its rows as (row number as a spreadsheet shows it, {header: value}),
    blank rows left out."""
    if data.startswith(b"PK\x03\x04") or file_name.lower().endswith((".xlsx", ".xlsm")):
        headers, rows = _xlsx_rows(data)
    else:
        headers, rows = _csv_rows(data)
    headers = [str(header).strip() if header is not None else "" for header in headers]
    if not any(headers):
        raise StatementUnreadable(gettext_noop("The file has no header row."))
    records = []
    for number, row in rows:
        if all(value is None or str(value).strip() == "" for value in row):
            continue
        records.append(
            (number, {header: value for header, value in zip(headers, row, strict=False) if header})
        )
        if len(records) > MAX_ROWS:
            raise StatementUnreadable(
                gettext_noop("More than %(count)d lines: split the statement."), count=MAX_ROWS
            )
    return headers, records


def _csv_rows(data: bytes):
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # Excel's "CSV" on a French Windows
    lines = text.splitlines()
    if not lines:
        raise StatementUnreadable(gettext_noop("The file is empty."))
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        # One column, or a sniff that could not decide: the separator the header uses most.
        delimiter = max(",;\t", key=lines[0].count)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    return rows[0], [(number, row) for number, row in enumerate(rows[1:], start=2)]


def _xlsx_rows(data: bytes):
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise StatementUnreadable(gettext_noop("Not a readable XLSX workbook.")) from error
    try:
        rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    finally:
        workbook.close()
    if not rows:
        raise StatementUnreadable(gettext_noop("The file is empty."))
    return list(rows[0]), [(number, list(row)) for number, row in enumerate(rows[1:], start=2)]


# --- values ----------------------------------------------------------------------------------
CURRENCY_WORDS = re.compile(r"(?i)\b(?:mad|dhs?|dzd|da|inr|rs|eur|usd|aed)\b\.?|[₹€$]|د\.?[مج]\.?")
SPACES = re.compile(r"[\s\u00a0\u202f\u2009']")


def parse_amount(value) -> Decimal | None:
    """ "1 249,00", "1,249.00", "1.249,00", "249 MAD", 249.0, "(12.00)" → Decimal; empty → None.
    Raises ValueError when it is not an amount."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float | Decimal):
        try:
            return _bounded(Decimal(str(value)).quantize(Decimal("0.01")), value)
        except InvalidOperation:  # inf, nan
            raise ValueError(value) from None
    text = SPACES.sub("", CURRENCY_WORDS.sub("", str(value)))
    if not text:
        return None
    negative = (text.startswith("(") and text.endswith(")")) or text.startswith("-") or text.endswith("-")
    text = text.strip("()-+")
    if not re.fullmatch(r"[0-9.,]+", text):
        raise ValueError(value)
    last_comma, last_dot = text.rfind(","), text.rfind(".")
    if last_comma >= 0 and last_dot >= 0:
        decimal_mark = "," if last_comma > last_dot else "."
    elif last_comma >= 0:
        # "249,5" and "249,50" are decimals; "1,249" (three digits after one comma) is thousands.
        decimal_mark = "" if text.count(",") > 1 or len(text) - last_comma - 1 == 3 else ","
    elif text.count(".") > 1:
        decimal_mark = ""  # "1.249.000": thousands
    else:
        decimal_mark = "."
    thousands = {",", "."} - {decimal_mark}
    for mark in thousands:
        text = text.replace(mark, "")
    if decimal_mark:
        text = text.replace(decimal_mark, ".")
    try:
        amount = Decimal(text).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ValueError(value) from None
    return _bounded(-amount if negative else amount, value)


def _bounded(amount: Decimal, value) -> Decimal:
    # RemittanceLine's columns hold ten digits before the point: beyond, it is no parcel's cash.
    if abs(amount) >= MAX_AMOUNT:
        raise ValueError(value)
    return amount


DATE_FORMATS = (
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%d.%m.%Y",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d/%m/%y",
    "%d-%m-%y",
    "%d %b %Y",
    "%d-%b-%Y",
    "%d %B %Y",
)
EXCEL_EPOCH = date(1899, 12, 30)


def parse_date(value) -> date | None:
    """A payout date: a spreadsheet date, an Excel serial number, ISO or day-first text
    ("31/01/2026", "2026-01-31", "31/01/2026 14:05", "2026-01-31T14:05:00Z"); empty → None.
    Raises ValueError when it is not a date."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 1 <= value < 2_958_466:  # Excel's serial day numbers (1900-01-01 … 9999-12-31)
            return EXCEL_EPOCH + timedelta(days=int(value))
        raise ValueError(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    day_part = text.split()[0] if re.match(r"^\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}\s", text) else text
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(day_part, pattern).date()
        except ValueError:
            continue
    if re.fullmatch(r"\d{5}(\.0+)?", text):
        return parse_date(float(text))
    raise ValueError(value)


def parse_tracking_number(value) -> str:
    """As the carrier wrote it, minus what a spreadsheet adds (spaces, "12345.0")."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value if value is not None else "").strip()
