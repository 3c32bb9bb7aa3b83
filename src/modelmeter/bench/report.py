"""The benchmark report in the terminal (rich tables on stdout) and as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

METRICS = (("ttft_ms", "TTFT"), ("itl_ms", "ITL"), ("tpot_ms", "TPOT"), ("e2e_ms", "E2E latency"))
STATS = ("mean", "p50", "p90", "p95", "p99")


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def console(stderr: bool = False, quiet: bool = False) -> Console:
    """A rich console; 140 columns when the output is not a terminal (a file, a pipe)."""
    c = Console(stderr=stderr, quiet=quiet)
    return c if c.is_terminal else Console(stderr=stderr, quiet=quiet, width=140)


def summary_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"Benchmark {report['run_id']}", show_header=False, title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value")
    rows = [
        (
            "Target",
            f"{report['model']} @ {report['base_url']} ({report['endpoint']}, "
            f"{'streamed' if report['stream'] else 'not streamed'})",
        ),
        ("Load", report["load"]),
        ("Duration (s)", fmt(report["duration_s"], 3)),
        ("Successful requests", fmt(report["completed"])),
        ("Failed requests", fmt(report["failed"])),
        ("Success rate", "-" if report["success_rate"] is None else f"{report['success_rate']:.1%}"),
        ("Input tokens", fmt(report["total_input_tokens"])),
        ("Output tokens", fmt(report["total_output_tokens"])),
        ("Request throughput (req/s)", fmt(report["request_throughput"])),
        ("Output token throughput (tok/s)", fmt(report["output_token_throughput"])),
        ("Total token throughput (tok/s)", fmt(report["total_token_throughput"])),
    ]
    if "goodput" in report:
        slos = ", ".join(f"{k} ≤ {v:g} ms" for k, v in report["slos_ms"].items())
        rows.append((f"Goodput (req/s; {slos})", fmt(report["goodput"])))
    if report.get("warmup"):
        rows.append(("Warm-up requests (not counted)", fmt(report["warmup"])))
    if report.get("interrupted"):
        rows.append(("Interrupted", "yes: figures cover the requests finished before Ctrl-C"))
    for row in rows:
        table.add_row(*row)
    return table


def latency_table(report: dict[str, Any]) -> Table:
    table = Table(title="Latency (ms)", title_justify="left")
    table.add_column("metric", style="bold")
    for stat in STATS:
        table.add_column(stat, justify="right")
    for key, label in METRICS:
        dist = report.get(key) or {}
        table.add_row(label, *(fmt(dist.get(s)) for s in STATS))
    return table


def errors_table(errors: dict[str, int]) -> Table:
    table = Table(title="Failures", title_justify="left")
    table.add_column("count", justify="right")
    table.add_column("error")
    for message, count in errors.items():
        table.add_row(fmt(count), message)
    return table


def comparison_table(comparison: dict[str, Any]) -> Table:
    verdict = "agree" if comparison["agree"] else "DISAGREE"
    table = Table(title=f"Client vs server ({comparison['tag']}): {verdict}", title_justify="left")
    for col, justify in (
        ("metric", "left"),
        ("client", "right"),
        ("server", "right"),
        ("rule", "left"),
        ("ok", "center"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in comparison["rows"]:
        table.add_row(row["metric"], fmt(row["client"]), fmt(row["server"]), row["rule"], "✓" if row["ok"] else "✗")
    return table


def render(report: dict[str, Any], out: Console | None = None) -> None:
    out = out or console()
    out.print(summary_table(report))
    out.print(latency_table(report))
    if report.get("errors"):
        out.print(errors_table(report["errors"]))
    comparison = report.get("server_comparison")
    if report.get("server_access") == "locked":
        out.print(
            "No client-vs-server table: the server's /api answered 401 "
            "(export MODELMETER_ADMIN_KEY=… or pass --admin-key)",
            soft_wrap=True,
        )
    if comparison:
        out.print(comparison_table(comparison))
        if comparison.get("note"):
            out.print(comparison["note"])
        if comparison.get("spend") is not None:
            out.print(f"Spend recorded by the server for this run: ${comparison['spend']:.6f}")
    if report.get("usage_url"):
        out.print(f"Usage tab for this run: {report['usage_url']}", soft_wrap=True)


def write_json(report: dict[str, Any], path: str | Path) -> None:
    Path(path).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
