"""``bench list`` / ``runs list`` and ``bench compare`` / ``runs compare``: remembered runs, from the
server when its /api lets us in, else from the files saved on this machine."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
import orjson
from rich.table import Table

from modelmeter.bench import compare as compare_runs
from modelmeter.bench import report, runs, server
from modelmeter.cli.client import admin_key_option, call, url_option
from modelmeter.cli.usage_errors import OneLineCommand, fail

_told: set[str] = set()


def _say_if_locked(exc: click.ClickException, url: str, admin_key: str | None) -> None:
    """A 401 is worth one line, once (the local files answer instead); other failures are not."""
    if exc.format_message().startswith("401") and url not in _told:
        _told.add(url)
        note = server.locked_note(url, admin_key, "showing the runs saved on this machine instead")
        click.echo(f"modelmeter bench: {note}", err=True)


def fetch_runs(
    url: str, kind: str | None, limit: int, admin_key: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    query = f"/api/runs?limit={limit}" + (f"&kind={kind}" if kind else "")
    try:
        body = call(url, "GET", query, admin_key=admin_key)
        return list(body["data"]), url
    except click.ClickException as exc:
        _say_if_locked(exc, url, admin_key)
    except (KeyError, TypeError):
        pass
    return runs.list_local(kind, limit), str(runs.runs_dir())


def fetch_run(url: str, run_id: str, admin_key: str | None = None) -> dict[str, Any]:
    try:
        run = call(url, "GET", f"/api/runs/{quote(run_id, safe='')}", admin_key=admin_key)
        if isinstance(run, dict):
            return run
    except click.ClickException as exc:
        _say_if_locked(exc, url, admin_key)
    local = runs.load_local(run_id)
    if local is None:
        fail(f"no run {run_id!r} on {url} or in {runs.runs_dir()}")
    return local


def _headline(run: dict[str, Any]) -> list[str]:
    r = run.get("report") or {}
    if run.get("kind") == "sweep":
        done = sum(1 for p in r.get("points") or [] if p.get("status") == "done")
        return ["-", "-", "-", f"{done} levels measured"]
    if run.get("kind") == "eval":
        acc = r.get("accuracy")
        return ["-", "-", report.fmt((r.get("e2e_ms") or {}).get("p50")), "-" if acc is None else f"{acc:.1%} accuracy"]
    rate = r.get("success_rate")
    return [
        report.fmt(r.get("request_throughput")),
        report.fmt(r.get("output_token_throughput")),
        report.fmt((r.get("ttft_ms") or {}).get("p50")),
        "-" if rate is None else f"{rate:.1%} ok",
    ]


@click.command("list", cls=OneLineCommand)
@url_option()
@admin_key_option()
@click.option("--kind", type=click.Choice(["bench", "eval", "sweep"]), help="Only this kind of run.")
@click.option("--limit", type=click.IntRange(1, 200), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def list_cmd(url: str, admin_key: str | None, kind: str | None, limit: int, as_json: bool) -> None:
    """List remembered runs, newest first (from the server if reachable, else local files)."""
    found, source = fetch_runs(url, kind, limit, admin_key)
    if as_json:
        click.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"Runs ({source}); p50 ms: TTFT of a bench, latency of an eval", title_justify="left")
    for col in ("run", "kind", "model", "created (UTC)", "load", "req/s", "out tok/s", "p50 ms", "result"):
        table.add_column(col, no_wrap=col != "load")
    for run in found:
        params = run.get("params") or {}
        created = str(run.get("created", "-"))[:19].replace("T", " ")
        table.add_row(
            run.get("id", "?"),
            run.get("kind", "?"),
            str(run.get("deployment") or "-"),
            created,
            str(params.get("load") or params.get("dataset") or "-"),
            *_headline(run),
        )
    report.console().print(table)


@click.command("compare", cls=OneLineCommand)
@click.argument("run_a")
@click.argument("run_b")
@url_option()
@admin_key_option()
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def compare_cmd(run_a: str, run_b: str, url: str, admin_key: str | None, as_json: bool) -> None:
    """Show runs RUN_A and RUN_B side by side, with the change from A to B."""
    a, b = fetch_run(url, run_a, admin_key), fetch_run(url, run_b, admin_key)
    if as_json:
        click.echo(
            orjson.dumps(
                {"a": a["id"], "b": b["id"], "rows": compare_runs.rows(a, b)}, option=orjson.OPT_INDENT_2
            ).decode()
        )
        return
    report.console().print(compare_runs.table(a, b))
