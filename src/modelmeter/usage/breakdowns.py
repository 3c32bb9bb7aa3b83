"""A window's breakdown by call type: requests, tokens, spend and error rate per value,
from the dimension rollups (whole hours, whole minutes) and the raw rows of the partial minutes at
the edges, so every window sums exactly and the rows add up to the window's totals."""

from __future__ import annotations

from typing import Any

from modelmeter.storage.database import Database
from modelmeter.storage.dim_rollups import DIM_SUMS, DIMENSIONS, table
from modelmeter.storage.rollups import HOUR, MINUTE
from modelmeter.units import PICO, iso
from modelmeter.usage.rollup_reads import segments
from modelmeter.usage.window import Window

_SUMS = ", ".join(f"SUM({c})" for c in DIM_SUMS)
_RAW = (
    "COUNT(*), SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), SUM(prompt_tokens), "
    "SUM(completion_tokens), SUM(total_tokens), SUM(spend_pusd)"
)


def breakdown(db: Database, deployment: str, window: Window, by: str) -> dict[str, Any]:
    """Every value of dimension ``by`` with requests in the window, by spend (then requests)."""
    col = DIMENSIONS[by]
    acc: dict[str, list[int]] = {}

    def add(value: str, sums: tuple[Any, ...]) -> None:
        row = acc.setdefault(value, [0] * len(DIM_SUMS))
        for i, v in enumerate(sums):
            row[i] += int(v or 0)

    parts = segments(window.start_us, window.end_us)
    for res in (HOUR, MINUTE):
        for a, b in parts[res.name]:
            for value, *sums in db.fetchall(
                f"SELECT value, {_SUMS} FROM {table(res)} WHERE deployment = :dep AND dim = :dim "
                "AND bucket_us >= :a AND bucket_us < :b GROUP BY value",
                {"dep": deployment, "dim": by, "a": a, "b": b},
            ):
                add(value, tuple(sums))
    for a, b in parts["raw"]:
        for value, *sums in db.fetchall(
            f"SELECT COALESCE({col}, ''), {_RAW} FROM records WHERE deployment = :dep "
            "AND start_us >= :a AND start_us < :b GROUP BY 1",
            {"dep": deployment, "a": a, "b": b},
        ):
            add(value, tuple(sums))
    rows = [_row(value, dict(zip(DIM_SUMS, sums, strict=True))) for value, sums in acc.items() if sums[0]]
    rows.sort(key=lambda r: (-r["spend_pusd"], -r["requests"], r["value"]))
    total = _row("", {c: sum(sums[i] for sums in acc.values()) for i, c in enumerate(DIM_SUMS)})
    total.pop("value")
    for r in rows:
        r["spend"] = r.pop("spend_pusd") / PICO
    total["spend"] = total.pop("spend_pusd") / PICO
    return {
        "deployment": deployment,
        "by": by,
        "start": iso(window.start_us),
        "end": iso(window.end_us),
        "rows": rows,
        "total": total,
    }


def _row(value: str, s: dict[str, int]) -> dict[str, Any]:
    n = s["requests"]
    return {
        "value": value,
        "requests": n,
        "failed": n - s["succeeded"],
        "error_rate": (n - s["succeeded"]) / n if n else None,
        "prompt_tokens": s["prompt_tokens"],
        "completion_tokens": s["completion_tokens"],
        "total_tokens": s["total_tokens"],
        "spend_pusd": s["spend_pusd"],
    }


CSV_COLUMNS = (
    "value",
    "requests",
    "failed",
    "error_rate",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "spend",
)
