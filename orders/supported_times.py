"""Which times from outside (API input and filters, store platforms' payloads) Livra takes.

Python reads more than PostgreSQL stores: a UTC offset up to ±23:59 and years 1 to 9999. PostgreSQL
refuses an offset beyond ±15:59 ("time zone displacement out of range", a 500 in a list filter, a
failed store delivery), and a year-1 time written with a positive offset is stored as 1 BC, which
Python cannot read back. Every real zone is within -12:00 and +14:00, and far-off years are typos or
probes, so such a time is refused as bad input, with a message that says what is taken.
"""

from datetime import datetime, timedelta

EARLIEST_YEAR, LATEST_YEAR = 1970, 2100
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


def time_refusal(value: datetime) -> str | None:
    """Why ``value`` is not taken, as a message for whoever sent it; None when it is taken."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        return "Give a UTC offset between -15:59 and +15:59."
    if not EARLIEST_YEAR <= value.year < LATEST_YEAR:
        return f"Give a time between {EARLIEST_YEAR} and {LATEST_YEAR}."
    return None
