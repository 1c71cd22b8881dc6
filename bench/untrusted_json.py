"""What reading JSON through ``orders.untrusted_json`` costs next to ``json.loads`` alone.

    .venv/bin/python bench/untrusted_json.py

Prints microseconds per document for the store webhook fixtures (Shopify's 9 kB order…) and the
worst cases a caller can send under the 1 MiB store webhook limit: 1 MiB of ``[]`` pairs (the
most brackets the depth scan walks) and 1 MiB of text in strings. No database, no Django.
"""

import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orders import untrusted_json

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "stores"
MIB = 1024 * 1024


def per_call_us(function, document: bytes) -> float:
    runs, seconds = timeit.Timer(lambda: function(document)).autorange()
    return seconds / runs * 1e6


def main() -> None:
    documents = {
        path.relative_to(FIXTURES).as_posix(): path.read_bytes() for path in sorted(FIXTURES.rglob("*.json"))
    }
    documents["1 MiB of [] pairs"] = b"[" + b"[]," * (MIB // 3 - 1) + b"[]]"
    documents["1 MiB of string text"] = json.dumps(["x" * 1000] * (MIB // 1004)).encode()
    print(f"{'document':38} {'bytes':>9} {'json.loads µs':>14} {'untrusted µs':>13} {'ratio':>6}")
    for name, document in documents.items():
        plain = per_call_us(json.loads, document)
        bounded = per_call_us(untrusted_json.loads, document)
        print(f"{name:38} {len(document):>9} {plain:>14.1f} {bounded:>13.1f} {bounded / plain:>6.2f}")
    deep = b"[" * 5000
    print(
        f"5,000 nested '[': refused in {per_call_us(untrusted_json.nesting_depth, deep):.1f} µs (depth scan)"
    )


if __name__ == "__main__":
    main()
