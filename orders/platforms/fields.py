"""Reading the fields of a store platform's JSON payload: the checks every adapter makes.

Each reader takes the value as found (``payload.get(key)``) and the field's name for the message,
and either returns it in Livra's terms or raises ``MalformedPayload`` naming the field. A name is
the field's path (``line_items[0].price``); ``resource`` puts the record it belongs to in front,
as the Shopify adapter words its messages (``order 'line_items[0].price'``).

Messages say what was expected and, at most, the JSON type found, never the value: they are kept
with the delivery and shown to staff.
"""

from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_datetime

from orders.platforms import MalformedPayload
from orders.supported_times import time_refusal

# Yes and no as checkout fields write them (consent checkboxes, custom fields), lower-cased.
YES_WORDS = frozenset({"yes", "y", "true", "1", "on", "oui", "نعم"})
NO_WORDS = frozenset({"no", "n", "false", "0", "off", "non", "لا"})

_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    type(None): "null",
}


def json_type(value) -> str:
    """What a parsed JSON value is, for a message: "an object", "an array", "a number", "null"…"""
    return _JSON_TYPE_NAMES.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


# --- text ---------------------------------------------------------------------------------------
def text(value, *, strict: bool = False) -> str:
    """The value as trimmed text; "" for null.

    Any other value is read through ``str()`` (``12.5`` → "12.5"), unless ``strict``: then only a
    string or a whole number has text, and anything else (a float, boolean, object…) reads as "".
    """
    if isinstance(value, str):
        return value.strip()
    if strict:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""
    return "" if value is None else str(value).strip()


def first_text(*values, strict: bool = False) -> str:
    """The first of the values with some ``text``; "" if none has."""
    return next((found for found in (text(value, strict=strict) for value in values) if found), "")


def joined_text(*values, separator: str = " ", strict: bool = False) -> str:
    """The values that have some ``text``, joined: a name from its parts, an address from its lines."""
    return separator.join(found for found in (text(value, strict=strict) for value in values) if found)


def full_name(person: dict, *, strict: bool = False) -> str:
    """``first_name`` and ``last_name`` joined, as a customer, billing or shipping record has them."""
    return joined_text(person.get("first_name"), person.get("last_name"), strict=strict)


def yes_or_no(answer: str, *, yes: frozenset[str] = YES_WORDS, no: frozenset[str] = NO_WORDS) -> bool | None:
    """True for a yes word, False for a no word, None for an answer that says neither (no claim)."""
    word = answer.strip().lower()
    return True if word in yes else False if word in no else None


# --- values that must be right ------------------------------------------------------------------
def identifier(
    value, field: str, *, resource: str = "", digits_only: bool = False, max_length: int = 0
) -> str:
    """An id sent as a string or a whole number, trimmed; never empty.

    ``digits_only``: the id must be digits (WooCommerce's order ids). ``max_length``: the longest
    id accepted (0: any length).
    """
    name = _named(field, resource)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise MalformedPayload(f"{name} is missing or not an id")
    found = str(value).strip()
    if digits_only and not found.isdigit():
        raise MalformedPayload(f"{name} is not a number")
    if max_length and len(found) > max_length:
        raise MalformedPayload(f"{name} is longer than {max_length} characters")
    return found


def money(value, field: str, *, resource: str = "") -> Decimal:
    """A Decimal from a money string ("479.00") or a JSON number, read through its text, never as a float.

    Not a number, not finite, or below zero: malformed.
    """
    name = _named(field, resource)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedPayload(f"{name} is {json_type(value)}, not an amount of money")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise MalformedPayload(f"{name} is not an amount of money") from None
    if not amount.is_finite():
        raise MalformedPayload(f"{name} is not an amount of money")
    if amount < 0:
        raise MalformedPayload(f"{name} is a negative amount")
    return amount


def whole_number(value, field: str, *, resource: str = "", minimum: int = 0) -> int:
    """A JSON whole number (not a boolean, not a string of digits) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MalformedPayload(f"{_named(field, resource)} must be a whole number, {minimum} or more")
    return value


def date_time(value, field: str, *, naive_zone: tzinfo | None = None, resource: str = "") -> datetime:
    """An ISO 8601 date and time, always aware, that Livra can store (orders.supported_times).

    ``naive_zone``: the zone of a time written without an offset (UTC for WooCommerce's ``*_gmt``
    fields, the store's zone for Shopify); None: an offset is required.
    """
    name = _named(field, resource)
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well formed but not a real date, e.g. month 13
        parsed = None
    if parsed is None:
        raise MalformedPayload(f"{name} is missing or not an ISO 8601 date and time")
    if parsed.tzinfo is None:
        if naive_zone is None:
            raise MalformedPayload(f"{name} must be an ISO 8601 date and time with an offset")
        parsed = parsed.replace(tzinfo=naive_zone)
    if refusal := time_refusal(parsed):
        raise MalformedPayload(f"{name}: {refusal}")
    return parsed


def optional_date_time(
    value, field: str, *, naive_zone: tzinfo | None = None, resource: str = ""
) -> datetime | None:
    """``date_time``, or None when the date is not set (null or "")."""
    if value in (None, ""):
        return None
    return date_time(value, field, naive_zone=naive_zone, resource=resource)


# --- structure ----------------------------------------------------------------------------------
def json_object(value, field: str, *, required: bool = False, resource: str = "") -> dict:
    """A nested JSON object; a missing one (null) reads as {} unless ``required``."""
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{_named(field, resource)} is {json_type(value)}, not an object")
    return value


def object_array(value, field: str, *, required: bool = False, resource: str = "") -> list[dict]:
    """A JSON array whose every element is an object; a missing one (null) reads as [] unless ``required``."""
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise MalformedPayload(f"{_named(field, resource)} is {json_type(value)}, not an array")
    for index, element in enumerate(value):
        if not isinstance(element, dict):
            raise MalformedPayload(
                f"{_named(f'{field}[{index}]', resource)} is {json_type(element)}, not an object"
            )
    return value


def _named(field: str, resource: str) -> str:
    return f"{resource} '{field}'" if resource else field
