"""Two remembered runs side by side, with the change from the first to the second."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from modelmeter.bench.report import fmt

_UP, _DOWN = "higher", "lower"  # which way is better
BENCH_ROWS: tuple[tuple[str, str, str], ...] = (
    ("completed", "Successful requests", _UP),
    ("failed", "Failed requests", _DOWN),
    ("success_rate", "Success rate", _UP),
    ("request_throughput", "Request throughput (req/s)", _UP),
    ("output_token_throughput", "Output token throughput (tok/s)", _UP),
    ("total_token_throughput", "Total token throughput (tok/s)", _UP),
    ("goodput", "Goodput (req/s)", _UP),
    *(
        (f"{metric}.{stat}", f"{label} {stat} (ms)", _DOWN)
        for metric, label in (("ttft_ms", "TTFT"), ("itl_ms", "ITL"), ("tpot_ms", "TPOT"), ("e2e_ms", "E2E"))
        for stat in ("mean", "p50", "p99")
    ),
)
EVAL_ROWS: tuple[tuple[str, str, str], ...] = (
    ("items", "Items", _UP),
    ("correct", "Correct", _UP),
    ("accuracy", "Accuracy", _UP),
    ("failed", "Failed requests", _DOWN),
    ("e2e_ms.mean", "Latency mean (ms)", _DOWN),
    ("e2e_ms.p50", "Latency p50 (ms)", _DOWN),
    ("e2e_ms.p90", "Latency p90 (ms)", _DOWN),
    ("cost_total", "Cost, total (USD)", _DOWN),
    ("cost_per_item", "Cost per item (USD)", _DOWN),
)
PARAMS = ("model", "base_url", "endpoint", "stream", "load", "input_tokens", "output_tokens", "dataset")


def _get(report: dict[str, Any] | None, path: str) -> Any:
    value: Any = report or {}
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """(label, a, b, delta, change %, better) for the metrics both runs' kind has."""
    spec = EVAL_ROWS if a.get("kind") == "eval" and b.get("kind") == "eval" else BENCH_ROWS
    out: list[dict[str, Any]] = []
    for path, label, better in spec:
        va, vb = _get(a.get("report"), path), _get(b.get("report"), path)
        if va is None and vb is None:
            continue
        delta = pct = None
        verdict = ""
        if isinstance(va, int | float) and isinstance(vb, int | float):
            delta = vb - va
            pct = delta / va * 100 if va else None
            if delta:
                verdict = "better" if (delta > 0) == (better == _UP) else "worse"
        out.append(
            {"metric": path, "label": label, "a": va, "b": vb, "delta": delta, "change_pct": pct, "verdict": verdict}
        )
    return out


def table(a: dict[str, Any], b: dict[str, Any]) -> Table:
    t = Table(title=f"{a['id']}  vs  {b['id']}", title_justify="left")
    t.add_column("", style="bold")
    t.add_column(f"A {a['id']}", justify="right")
    t.add_column(f"B {b['id']}", justify="right")
    t.add_column("B − A", justify="right")
    t.add_column("change", justify="right")
    for key in ("kind", "created"):
        t.add_row(key, fmt(a.get(key)), fmt(b.get(key)), "", "")
    for key in PARAMS:
        pa, pb = (a.get("params") or {}).get(key), (b.get("params") or {}).get(key)
        if pa is not None or pb is not None:
            t.add_row(key, fmt(pa), fmt(pb), "", "" if pa == pb else "differs")
    t.add_section()
    for row in rows(a, b):
        change = "" if row["change_pct"] is None else f"{row['change_pct']:+.1f}%"
        style = {"better": "green", "worse": "red"}.get(row["verdict"], "")
        delta = (
            ""
            if row["delta"] is None
            else (f"{row['delta']:+,.3f}" if isinstance(row["delta"], float) else f"{row['delta']:+,}")
        )
        t.add_row(
            row["label"],
            fmt(row["a"]),
            fmt(row["b"]),
            f"[{style}]{delta}[/]" if style else delta,
            f"[{style}]{change} {row['verdict']}[/]" if style else change,
        )
    return t
