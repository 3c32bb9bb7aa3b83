"""The Usage tab's split by upstream (routed deployments): requests, latency and spend per upstream
that answered, and the calls "rescued" (answered after a failed attempt).

Whole hours and minutes come from the upstream rollups (``storage.upstream_rollups``, 0016), the
partial minutes at the window's edges from the raw rows (as ``rollup_reads.segments`` splits any
window), so the figures equal a scan of the window's records exactly. A tag filter has no rollup:
it reads the window's tagged records (through the tag index).
"""

from __future__ import annotations

from typing import Any

from modelmeter.storage.database import Database
from modelmeter.storage.rollups import HOUR, MINUTE
from modelmeter.storage.upstream_rollups import NONE_SERVED, UPSTREAM_SUMS, add_to, table
from modelmeter.units import PICO
from modelmeter.usage.rollup_reads import segments
from modelmeter.usage.window import Window

_ROLLED = f"SELECT upstream, {', '.join(f'SUM({c})' for c in UPSTREAM_SUMS)} FROM {{table}} " + (
    "WHERE deployment = :d AND bucket_us >= :s AND bucket_us < :e GROUP BY upstream"
)
_TAGGED = (
    " AND id IN (SELECT id FROM record_tags WHERE deployment = :d AND tag = :t AND start_us >= :s AND start_us < :e)"
)


def _raw_sql(dialect: str, tagged: bool) -> str:
    # Latency in whole microseconds as the writer adds it (upstream_rollups.latency_us): the same
    # double arithmetic, truncated.
    us = "TRUNC(latency_ms * 1000 + 0.5)" if dialect == "postgresql" else "latency_ms * 1000 + 0.5"
    return (
        f"SELECT COALESCE(served_by, '{NONE_SERVED}'), COUNT(*), "
        "SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'success' AND retries > 0 THEN 1 ELSE 0 END), "
        f"SUM(CAST({us} AS BIGINT)), SUM(spend_pusd) FROM records "
        "WHERE deployment = :d AND start_us >= :s AND start_us < :e AND attempts IS NOT NULL"
        f"{_TAGGED if tagged else ''} GROUP BY 1"
    )


def sums(db: Database, deployment: str, window: Window, tag: str | None = None) -> dict[str, list[int]]:
    """Upstream ("" for none) -> ``UPSTREAM_SUMS`` over the window."""
    acc: dict[str, list[int]] = {}

    def add(rows: list[tuple[Any, ...]]) -> None:
        for upstream, *values in rows:
            add_to(acc, upstream, (int(v or 0) for v in values))  # PostgreSQL's SUM(BIGINT): a Decimal

    base = {"d": deployment}
    if tag:
        add(db.fetchall(_raw_sql(db.dialect, True), {**base, "s": window.start_us, "e": window.end_us, "t": tag}))
        return acc
    parts = segments(window.start_us, window.end_us)
    for res in (HOUR, MINUTE):
        for a, b in parts[res.name]:
            add(db.fetchall(_ROLLED.format(table=table(res)), {**base, "s": a, "e": b}))
    for a, b in parts["raw"]:
        add(db.fetchall(_raw_sql(db.dialect, False), {**base, "s": a, "e": b}))
    return acc


def split(db: Database, deployment: str, window: Window, tag: str | None = None) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for upstream, values in sums(db, deployment, window, tag).items():
        s = dict(zip(UPSTREAM_SUMS, values, strict=True))
        n = s["requests"]
        if not n:
            continue
        data.append(
            {
                "upstream": upstream or None,  # None: no upstream answered (all failed or out)
                "requests": n,
                "succeeded": s["succeeded"],
                "avg_latency_ms": round(s["latency_us"] / n / 1000, 3),
                "spend": s["spend_pusd"] / PICO,
                "rescued": s["rescued"],
            }
        )
    data.sort(key=lambda d: (-d["requests"], d["upstream"] or ""))
    return {"data": data, "rescued": sum(d["rescued"] for d in data)}
