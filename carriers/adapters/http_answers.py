"""What every HTTP carrier adapter reads off an answer the same way (one copy, not nine)."""

import time
from email.utils import parsedate_to_datetime

import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError


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


def request_never_sent(exc: requests.RequestException) -> bool:
    """True when the request failed before a byte of it went out (refused, DNS, connect timeout):
    the carrier cannot have acted on it. Otherwise (a read timeout, an answer cut short) it may
    have, and a create is then UNKNOWN."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ReadTimeout):
        return False
    seen, cause = set(), exc
    while isinstance(cause, BaseException) and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, NewConnectionError | ConnectTimeoutError | NameResolutionError):
            return True
        cause = getattr(cause, "reason", None) or (cause.args[0] if cause.args else None)
    return False
