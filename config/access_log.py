"""Request logs without personal data: query strings are logged with their keys, never their values.

Staff search admin by phone (``?q=0612…``), integrations filter the API by it
(``?phone=%2B2126…``), and the admin's links carry the same in the referer. Gunicorn's access log
(``--logger-class``, the Procfile's ``web:`` line, which ``./livra demo`` runs too) and Django's
development server log (``django.server``) write ``?phone=*&page=*``: which filters were used, not
what was looked for. (``django.request`` logs the path only, and Livra's own log lines carry ids.)
"""

import logging
import re

from gunicorn.glogging import Logger

REDACTED = "*"


def redacted_query(query: str) -> str:
    """``phone=%2B2126…&page=2`` → ``phone=*&page=*``; a part without ``=`` is itself a value."""
    if not query:
        return query
    pairs = (part.partition("=") for part in re.split(r"[&;]", query))
    return "&".join(f"{key}={REDACTED}" if sep else REDACTED if key else "" for key, sep, _value in pairs)


def redacted_target(target: str) -> str:
    """A request target or URL with its query string's values redacted (and no fragment)."""
    location, sep, query = target.partition("?")
    return f"{location}?{redacted_query(query.partition('#')[0])}" if sep else target


def redacted_request_line(line: str) -> str:
    """``GET /admin/?q=0612… HTTP/1.1`` → ``GET /admin/?q=* HTTP/1.1``."""
    method, space, rest = line.partition(" ")
    target, space_before_protocol, protocol = rest.rpartition(" ") if " " in rest else (rest, "", "")
    return f"{method}{space}{redacted_target(target)}{space_before_protocol}{protocol}"


class QueryRedactingLogger(Logger):
    """Gunicorn's logger whose access log entries carry no query values: the request line, the
    query string, the referer and the raw environ items a custom ``access_log_format`` could use."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"] = redacted_request_line(atoms["r"])
        atoms["q"] = redacted_query(atoms["q"] or "")
        atoms["f"] = redacted_target(atoms["f"])
        for key in ("{referer}i", "{http_referer}e", "{raw_uri}e", "{request_uri}e"):
            if key in atoms:
                atoms[key] = redacted_target(atoms[key])
        if "{query_string}e" in atoms:
            atoms["{query_string}e"] = redacted_query(atoms["{query_string}e"])
        return atoms


class RedactRequestLineFilter(logging.Filter):
    """For ``django.server``: its records' first argument is the request line (``GET /?q=… HTTP/1.1``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args and isinstance(record.args[0], str):
            record.args = (redacted_request_line(record.args[0]), *record.args[1:])
        return True
