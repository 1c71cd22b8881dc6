"""What every HTTP carrier adapter reads off an answer the same way (one copy, not nine)."""

import time
from email.utils import parsedate_to_datetime


def header_value(headers, name: str) -> str:
    """``name``'s value in ``headers`` whatever its case, "" when absent."""
    wanted = name.lower()
    return next((str(value or "") for key, value in (headers or {}).items() if key.lower() == wanted), "")


def retry_after_seconds(headers) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), never negative; None when absent."""
    value = header_value(headers, "Retry-After").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
