"""``modelmeter runs list|show|compare|export|import``: the runs the Runs page shows, from the terminal
(the server's, with the admin key from $MODELMETER_ADMIN_KEY; else the ones saved on this machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson
from rich.table import Table

from modelmeter.bench import report
from modelmeter.cli.client import admin_key_option, call, url_option
from modelmeter.cli.eval import items_table
from modelmeter.cli.eval import summary_table as eval_summary
from modelmeter.cli.run_list import compare_cmd, fetch_run, list_cmd
from modelmeter.cli.usage_errors import OneLineCommand, OneLineGroup, fail
from modelmeter.runs import runfile


@click.group("runs", cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
def runs() -> None:
    """Stored benchmark and eval runs (the page's Runs page)."""


runs.add_command(list_cmd, "list")
runs.add_command(compare_cmd, "compare")


@runs.command("show", cls=OneLineCommand)
@click.argument("run_id")
@url_option()
@admin_key_option()
@click.option("--items", "show", type=click.Choice(["all", "wrong", "none"]), default="wrong", show_default=True)
def show_cmd(run_id: str, url: str, admin_key: str | None, show: str) -> None:
    """One run's report: its figures, and for an eval its graded items."""
    run = fetch_run(url, run_id, admin_key)
    r = run.get("report") or {}
    out = report.console()
    status = r.get("status") or "done"
    out.print(f"{run['kind']} {run['id']} of {run.get('deployment') or '?'} · {run.get('created')} · {status}")
    if status in ("running", "failed", "lost"):
        live = r.get("live") or {}
        out.print(r.get("error") or f"{live.get('done', 0)} done, {live.get('failed', 0)} failed so far")
        return
    if run["kind"] == "sweep":
        out.print(sweep_table(r))
    elif run["kind"] == "eval":
        out.print(eval_summary(r))
        if show != "none" and r.get("results"):
            out.print(items_table(r, show == "wrong"))
    else:
        report.render(r, out)


def sweep_table(r: dict[str, Any]) -> Table:
    """A server-side sweep's curve: one row per level (each level is a bench run of its own)."""
    table = Table(title="Sweep: throughput vs latency", title_justify="left")
    cols = ("rate" if r.get("sweep_by") == "rate" else "concurrency", "run", "status", "req/s", "out tok/s",
            "E2E p50", "E2E p95")  # fmt: skip
    for col in cols:
        table.add_column(col, no_wrap=True)
    for p in r.get("points") or []:
        if p.get("level") is None:
            continue
        table.add_row(
            f"{p['level']:g}", p.get("run_id") or "-", p.get("status") or "-", report.fmt(p.get("request_throughput")),
            report.fmt(p.get("output_token_throughput")), report.fmt(p.get("e2e_p50_ms")),
            report.fmt(p.get("e2e_p95_ms")),
        )  # fmt: skip
    return table


@runs.command("export", cls=OneLineCommand)
@click.argument("run_id")
@url_option()
@admin_key_option()
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file (default: stdout).")
def export_cmd(run_id: str, url: str, admin_key: str | None, output: str | None) -> None:
    """A run as JSON: its id, kind, parameters and report (what /api/runs/ID answers), for `runs import`."""
    doc = runfile.export_document(fetch_run(url, run_id, admin_key))
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    if output:
        Path(output).write_bytes(data)
        click.echo(f"Run {run_id} written to {output}", err=True)
    else:
        click.echo(data.decode(), nl=False)


@runs.command("import", cls=OneLineCommand)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@url_option()
@admin_key_option()
@click.option("--new-id", is_flag=True, help="If the run's id is taken on the server, store it under a fresh one.")
def import_cmd(file: str, url: str, admin_key: str | None, new_id: bool) -> None:
    """Store a run from FILE (written by `runs export`, here or on another server) on the server."""
    try:
        raw = click.open_file(file, "rb").read()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    try:
        runfile.parse(raw)  # the same checks the server makes, said before anything is sent
    except runfile.RunFileError as exc:
        fail(f"{file}: {exc}")
    try:
        doc = orjson.loads(raw)
        run = call(url, "POST", "/api/runs/import" + ("?new_id=true" if new_id else ""), doc, admin_key)
    except click.ClickException as exc:
        fail(f"{file}: {exc.format_message()}")
    renamed = (run.get("params") or {}).get("imported_from")
    note = f" (its id {renamed!r} was taken: stored as a copy)" if renamed else ""
    click.echo(f"Run {run['id']} imported to {url}{note}: {url.rstrip('/')}/runs/{run['id']}")
