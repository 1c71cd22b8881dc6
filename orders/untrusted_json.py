"""Reading JSON that came from outside (webhook bodies, API requests) without recursing on it.

Python's ``json`` parser recurses once per level of nesting: a body of 5,000 ``[`` raises
``RecursionError``, which is not a ``ValueError``, so every caller that treats unreadable JSON as
bad input turned it into a 500 or a "failed" delivery instead; and a document that just fits the
interpreter's stack breaks the next recursive reader of it (a worker runs deeper than a request).
Here the nesting is measured first, in passes that run in C over the bytes, and a document nested
deeper than ``MAX_DEPTH`` is refused with ``JSONTooDeep``, a ``ValueError`` like any other
unreadable JSON. No platform or provider payload comes near the limit (Shopify's orders and Meta's
webhooks nest fewer than 10 levels).
"""

import json
import re
from itertools import accumulate

MAX_DEPTH = 64

# A JSON string literal: what is inside one ("[", "}") does not nest. re.DOTALL: an escaped raw
# line break is not JSON either, but it must not make the scan lose track of a string.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(set(range(256)) - set(b"[]{}"))
# The change in depth each remaining byte makes: +1 for [ and {, -1 for ] and }.
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


class JSONTooDeep(ValueError):
    def __init__(self, limit: int):
        super().__init__(f"nested deeper than {limit} levels")


def nesting_depth(document: bytes | str) -> int:
    """How deep the arrays and objects of ``document`` nest (0 for a scalar), without parsing it.

    A document that is not JSON gets some number; the parser refuses it after."""
    data = document.encode("utf-8", "surrogatepass") if isinstance(document, str) else bytes(document)
    brackets = _STRING.sub(b"", data).translate(None, _NOT_A_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(document: bytes | str, *, max_depth: int = MAX_DEPTH, **json_options):
    """``json.loads`` for input from outside: ``ValueError`` (``JSONTooDeep`` included, and
    ``UnicodeDecodeError`` for bytes that are not UTF-8) for anything that is not JSON nested at
    most ``max_depth`` deep; never ``RecursionError``."""
    if nesting_depth(document) > max_depth:
        raise JSONTooDeep(max_depth)
    return json.loads(document, **json_options)
