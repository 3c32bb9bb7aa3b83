"""The request log filtered by API key, session and end user on a database ``scale.py`` filled:
first call and median of five, 50 rows over 7 days, then the next page.

    python benchmarks/log_filters.py --database sqlite:////tmp/mm.db
    PYTHONPATH=/path/to/other/src python benchmarks/log_filters.py --database …   # another tree

Only ``usage.records.page`` is called, so the same script times an older tree (before migration
0019 the key and session filters paged on indexes of the records, the end user on nothing).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from modelmeter.storage.database import Database
from modelmeter.usage import records as records_q
from modelmeter.usage.window import parse_window

# Values scale.py's synthetic traffic has: a Zipf-like head (key-0..20, user-0..50) and long tails.
CASES: list[tuple[str, dict[str, str]]] = [
    ("key, heavy (key-3)", {"key_alias": "key-3"}),
    ("key, tail (key-7777)", {"key_alias": "key-7777"}),
    ("session (sess-1234)", {"session": "sess-1234"}),
    ("end user, heavy (user-7)", {"end_user": "user-7"}),
    ("end user, none in the window", {"end_user": "user-none"}),
    ("key + status=error", {"key_alias": "key-3", "status": "error"}),
]


def _ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", required=True)
    ap.add_argument("--deployment", default="gpt-4o-mini")
    args = ap.parse_args()
    db = Database(args.database)
    w7 = parse_window("7d")
    print(f"{'log page filtered by':<32}{'rows':>5}{'first ms':>10}{'median ms':>11}{'page 2 ms':>11}")
    for name, f in CASES:

        def call(cursor: str | None = None, f: dict[str, str] = f) -> dict[str, Any]:
            return records_q.page(db, args.deployment, w7, limit=50, cursor=cursor, **f)  # type: ignore[arg-type]

        first, page = _ms(call)
        median = statistics.median(_ms(call)[0] for _ in range(5))
        nxt = page["next_cursor"]
        deep = f"{_ms(lambda nxt=nxt: call(nxt))[0]:>11.1f}" if nxt else f"{'-':>11}"
        print(f"{name:<32}{len(page['data']):>5}{first:>10.1f}{median:>11.1f}{deep}", flush=True)


if __name__ == "__main__":
    main()
