"""The Usage tab's split by upstream (routed deployments): requests, latency and spend per upstream
that answered, and the calls "rescued" (answered after a failed attempt).

Read from the records of the window (the rollups have no upstream dimension): only rows with
attempts, i.e. calls to routed deployments, through the (deployment, start_us) index.
"""

from __future__ import annotations

from typing import Any

from modelmeter.storage.database import Database
from modelmeter.units import PICO
from modelmeter.usage.window import Window

_SQL = (
    "SELECT served_by, COUNT(*), SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), SUM(latency_ms), "
    "SUM(spend_pusd), SUM(CASE WHEN status = 'success' AND retries > 0 THEN 1 ELSE 0 END) "
    "FROM records WHERE deployment = :d AND start_us >= :s AND start_us < :e AND attempts IS NOT NULL{tag} "
    "GROUP BY served_by ORDER BY COUNT(*) DESC"
)
_TAGGED = (
    " AND id IN (SELECT id FROM record_tags WHERE deployment = :d AND tag = :t AND start_us >= :s AND start_us < :e)"
)


def split(db: Database, deployment: str, window: Window, tag: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"d": deployment, "s": window.start_us, "e": window.end_us}
    if tag:
        params["t"] = tag
    rows = db.fetchall(_SQL.format(tag=_TAGGED if tag else ""), params)
    data = [
        {
            "upstream": served_by,  # None: no upstream answered (all failed or out)
            "requests": int(n),
            "succeeded": int(ok or 0),
            "avg_latency_ms": round(float(latency or 0) / n, 3) if n else None,
            "spend": int(spend or 0) / PICO,
            "rescued": int(rescued or 0),
        }
        for served_by, n, ok, latency, spend, rescued in rows
    ]
    return {"data": data, "rescued": sum(d["rescued"] for d in data)}
