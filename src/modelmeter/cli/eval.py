"""``modelmeter eval``: run a data set of prompts with expected answers against a model and report
accuracy next to latency and cost. Bad arguments: one line on stderr, exit status 2."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from modelmeter.bench import report, runs
from modelmeter.bench.eval import EvalConfig, run_eval
from modelmeter.bench.grading import MATCHES
from modelmeter.bench.runner import BenchError
from modelmeter.cli.bench import DEFAULT_BASE_URL, run_async, save_run
from modelmeter.cli.client import admin_key_option
from modelmeter.cli.usage_errors import OneLineCommand, above_zero, at_least, fail


def summary_table(r: dict[str, Any]) -> Table:
    table = Table(title=f"Evaluation {r['run_id']}", show_header=False, title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value")
    acc = r["accuracy"]
    rows = [
        ("Target", f"{r['model']} @ {r['base_url']} ({r['endpoint']})"),
        ("Data set", r["dataset"]),
        ("Accuracy", "-" if acc is None else f"{acc:.1%} ({r['correct']} of {r['items']})"),
        ("Failed requests", report.fmt(r["failed"])),
        ("Latency mean / p50 / p90 (ms)", " / ".join(report.fmt(r["e2e_ms"].get(k)) for k in ("mean", "p50", "p90"))),
        ("TTFT p50 (ms)", report.fmt(r["ttft_ms"].get("p50"))),
        ("Tokens in / out", f"{r['total_input_tokens']:,} / {r['total_output_tokens']:,}"),
        ("Cost, total (USD)", "-" if r["cost_total"] is None else f"{r['cost_total']:.6f}"),
        ("Cost per item (USD)", "-" if r["cost_per_item"] is None else f"{r['cost_per_item']:.8f}"),
    ]
    if r["cost_total"] is None and r.get("server_access") == "locked":
        rows.append(
            (
                "",
                "(cost is read from the server's records: its /api needs the admin key, "
                "MODELMETER_ADMIN_KEY or --admin-key)",
            )
        )
    elif r["cost_total"] is None:
        rows.append(("", "(cost is read from a modelmeter server's records; not one here)"))
    if r.get("interrupted"):
        rows.append(("Interrupted", "yes: items not answered count as wrong"))
    for row in rows:
        table.add_row(*row)
    return table


def items_table(r: dict[str, Any], only_wrong: bool) -> Table:
    table = Table(title="Items" + (" answered wrongly" if only_wrong else ""), title_justify="left")
    for col, justify in (
        ("#", "right"),
        ("prompt", "left"),
        ("expected", "left"),
        ("answer", "left"),
        ("ok", "center"),
        ("ms", "right"),
        ("cost", "right"),
    ):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in r["results"]:
        if only_wrong and row["correct"]:
            continue
        answer = row["answer"] if row["answer"] is not None else f"[red]{row['error'] or 'no answer'}[/]"
        answer = " ".join(str(answer).split())
        table.add_row(
            str(row["index"] + 1),
            row["prompt"][:60],
            str(row["answer_expected"] or row["expected"])[:30],
            answer[:60],
            "✓" if row["correct"] else "✗",
            report.fmt(row["latency_ms"], 0),
            "-" if row["cost"] is None else f"{row['cost']:.8f}",
        )
    return table


@click.command("eval", cls=OneLineCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", help="The model (deployment) to evaluate.")
@click.option(
    "--dataset",
    type=click.Path(dir_okay=False),
    help='JSONL of {"prompt", "expected", "match"}, or a bundled set: arithmetic (the default, 50 '
    "arithmetic and unit-conversion questions) or arc_agi_subset (30 ARC-AGI puzzles, grid grader).",
)
@click.option(
    "--grader",
    type=click.Choice(list(MATCHES)),
    help='Grade every item this way (default: each line\'s own "match").',
)
@click.option("--tolerance", help='With --grader number: absolute (0.01) or relative ("1%").')
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True)
@click.option("--api-key", envvar="OPENAI_API_KEY", help="Bearer key for the target [$OPENAI_API_KEY].")
@admin_key_option()
@click.option("--endpoint", type=click.Choice(["chat", "completions"]), default="chat", show_default=True)
@click.option("--concurrency", "-c", type=int, default=4, show_default=True)
@click.option(
    "--max-tokens", type=int, default=64, show_default=True, help="max_tokens of each answer (a line's own wins)."
)
@click.option("--stream/--no-stream", default=True, show_default=True)
@click.option("--no-metadata", is_flag=True, help='Leave out "metadata": {"eval_run": …}.')
@click.option(
    "--items",
    "show",
    type=click.Choice(["all", "wrong", "none"]),
    default="all",
    show_default=True,
    help="Which items to list in the terminal.",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report here.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds per request.")
@click.option(
    "--keepalive/--no-keepalive",
    default=True,
    show_default=True,
    help="Reuse connections (--no-keepalive: one per request).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no notes on stderr.")
def eval_cmd(
    model: str | None,
    dataset: str | None,
    grader: str | None,
    tolerance: str | None,
    base_url: str,
    api_key: str | None,
    admin_key: str | None,
    endpoint: str,
    concurrency: int,
    max_tokens: int,
    stream: bool,
    no_metadata: bool,
    show: str,
    json_path: str | None,
    timeout: float,
    keepalive: bool,
    quiet: bool,
) -> None:
    """Evaluate a model on prompts with expected answers: accuracy, latency, cost per item.

    Its requests are tagged eval:RUN; the run is remembered like a benchmark (`bench list`)."""
    if not model:
        fail("--model is required (the model or deployment to evaluate)")
    at_least("--concurrency", concurrency, 1)
    at_least("--max-tokens", max_tokens, 1)
    above_zero("--timeout", timeout)
    if not base_url.startswith(("http://", "https://")):
        fail(f"--base-url must be an http(s) URL (got {base_url!r})")
    cfg = EvalConfig(
        model=model,
        run_id=runs.new_run_id(),
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        dataset=dataset,
        endpoint=endpoint,
        concurrency=concurrency,
        max_tokens=max_tokens,
        stream=stream,
        metadata=not no_metadata,
        timeout=timeout,
        progress=not quiet,
        keepalive=keepalive,
        grader=grader,
        tolerance=tolerance,
        admin_key=admin_key,
    )
    err = report.console(stderr=True, quiet=quiet)
    err.print(f"eval {cfg.run_id}: {cfg.params()['dataset']} → {model} at {cfg.base_url} (tag {cfg.tag})")
    try:
        result = run_async(run_eval(cfg, lambda m: err.print(m, soft_wrap=True)))
    except BenchError as exc:
        fail(str(exc))
    save_run(runs.make_run(cfg.run_id, "eval", model, cfg.params(), result), json_path, err, admin_key)
    out = report.console()
    out.print(summary_table(result))
    if show != "none":
        out.print(items_table(result, show == "wrong"))
    if result.get("usage_url"):
        out.print(f"Usage tab for this run: {result['usage_url']}", soft_wrap=True)
    if result["answered"] == 0 and result["failed"]:
        sys.exit(1)
