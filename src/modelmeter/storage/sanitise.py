"""Rows made storable before they reach a batch, so one odd value never makes a database refuse
a whole batch (which the writer then stores row by row, a fraction of its speed).

* PostgreSQL ``text`` cannot hold NUL: every NUL in a text column becomes U+FFFD, and so does a
  NUL in a tag (tags are stored decoded in ``record_tags``; their JSON list is re-encoded to match).
  JSON text keeps its ``\\u0000`` escapes: the columns are ``text``, which holds them.
* A lone surrogate (``\\ud800``: not UTF-8, so neither database takes it) in a plain text column
  becomes U+FFFD too.
* Integers are clamped into their column's range (SMALLINT; counts as below), in both databases
  (SQLite does not enforce SMALLINT, but the same row must read the same from either).

Rows that need nothing are passed through as they are (no copy): the common case costs a scan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

import orjson

from modelmeter.storage.row import BIGINT_FIELDS, SMALLINT_FIELDS, TEXT_FIELDS, RecordRow

REPLACEMENT = "\ufffd"
# Counts are never negative (a hostile upstream must not lower the totals) and small enough that
# the rollups' sums of them cannot overflow BIGINT: 2**40 tokens, 2**53 pico-USD ($9,007) a call.
_LIMITS = {"start_us": (0, 2**62), "end_us": (0, 2**62), "spend_pusd": (0, 2**53)}
_RANGES = (
    *((f, (-(2**15), 2**15 - 1)) for f in SMALLINT_FIELDS),
    *((f, _LIMITS.get(f, (0, 2**40))) for f in BIGINT_FIELDS),
)
_JSON_FIELDS = (
    "cost_breakdown",
    "metadata",
    "tags",
    "attempts",
    "request",
    "response",
    "upstream_request",
    "upstream_response",
)
_PLAIN_TEXT = tuple(f for f in TEXT_FIELDS if f not in _JSON_FIELDS)
_SURROGATE = re.compile("[\ud800-\udfff]")


def for_database(rows: Sequence[RecordRow], dialect: str) -> list[RecordRow]:
    """The rows as ``dialect`` will take them (fixed copies of the few that need it)."""
    no_nul = dialect == "postgresql"
    out: list[RecordRow] = []
    for row in rows:
        fixed: dict[str, Any] | None = None
        for name, (low, high) in _RANGES:
            value = row[name]  # type: ignore[literal-required]
            if not isinstance(value, int) or not low <= value <= high:
                fixed = fixed if fixed is not None else dict(row)
                fixed[name] = _clamp(value, low, high)
        for name in _PLAIN_TEXT:  # (JSON text comes from orjson, which never writes a lone surrogate)
            value = row.get(name)
            if isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
                fixed = fixed if fixed is not None else dict(row)
                fixed[name] = _SURROGATE.sub(REPLACEMENT, value)
        if no_nul:
            for name in TEXT_FIELDS:
                value = row.get(name)
                if isinstance(value, str) and "\x00" in value:
                    fixed = fixed if fixed is not None else dict(row)
                    fixed[name] = value.replace("\x00", REPLACEMENT)
            tags = row["tags"]
            if isinstance(tags, str) and "\\u0000" in tags:
                fixed = fixed if fixed is not None else dict(row)
                fixed["tags"] = _tags_without_nul(tags)
        out.append(cast(RecordRow, fixed) if fixed is not None else row)
    return out


def _clamp(value: Any, low: int, high: int) -> int:
    try:
        number = int(value or 0)
    except (TypeError, ValueError, OverflowError):  # e.g. NaN, or not a number at all
        return 0
    return max(min(number, high), low)


def _tags_without_nul(tags: str) -> str:
    try:
        parsed = orjson.loads(tags)
    except orjson.JSONDecodeError:
        return tags
    if not isinstance(parsed, list):
        return tags
    return orjson.dumps([t.replace("\x00", REPLACEMENT) if isinstance(t, str) else t for t in parsed]).decode()
