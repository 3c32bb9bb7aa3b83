"""``modelmeter bench``: drive load at an OpenAI-compatible endpoint and report it as vLLM's
``bench serve`` would; ``bench list`` and ``bench compare`` look back at remembered runs.

Bad arguments and unusable targets end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from modelmeter.bench import load, metrics, prompts, report, runs, server
from modelmeter.bench.runner import BenchConfig, BenchError, run_bench
from modelmeter.cli.client import admin_key_option, call
from modelmeter.cli.run_list import compare_cmd, list_cmd
from modelmeter.cli.usage_errors import OneLineGroup, above_zero, at_least, fail

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (it is, with uvicorn[standard]): a faster client."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def save_run(run: dict[str, Any], json_path: str | None, console: Console, admin_key: str | None = None) -> None:
    """The report to ``--json``; the run to a local file, and to the server when the target is a
    modelmeter server whose /api lets us in (before anything is printed, so a closed pipe loses
    nothing)."""
    result = run["report"]
    if json_path:
        try:
            report.write_json(result, json_path)
        except OSError as exc:
            fail(f"cannot write {json_path}: {exc.strerror}")
    root = server.root_of(result["base_url"]) if result.get("server_access") == "open" else None
    path = runs.save_local(run)
    console.print(f"Run {run['id']} saved to {path}", style="dim")
    if root:
        try:
            call(root, "POST", "/api/runs", run, admin_key)
            console.print(f"Run {run['id']} stored on {root} (GET /api/runs/{run['id']})", style="dim")
        except click.ClickException as exc:
            console.print(f"could not store the run on {root}: {exc.format_message()}", style="yellow")


@click.group(
    "bench", cls=OneLineGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--base-url",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="The OpenAI-compatible API to load: a modelmeter server or any other.",
)
@click.option("--model", help="The model (deployment) to send requests to.")
@click.option("--api-key", envvar="OPENAI_API_KEY", help="Bearer key for the target [$OPENAI_API_KEY].")
@admin_key_option()
@click.option("--endpoint", type=click.Choice(list(prompts.ENDPOINTS)), default="chat", show_default=True)
@click.option(
    "--requests",
    "-n",
    type=int,
    help="Send exactly N requests (default: 100, or each --dataset line once; none with --duration).",
)
@click.option("--duration", help="Send for this long, e.g. 60s or 2m (with --requests: whichever ends first).")
@click.option(
    "--concurrency", "-c", type=int, help="Requests in flight at most (default 1; with --rate: no cap unless given)."
)
@click.option("--rate", type=float, help="Requests per second, Poisson arrivals (open loop).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of arrivals and prompts.")
@click.option(
    "--warmup",
    type=int,
    default=0,
    show_default=True,
    help="Warm-up requests first, tagged bench:RUN:warmup and left out of the figures.",
)
@click.option("--stream/--no-stream", default=True, show_default=True)
@click.option("--input-tokens", type=int, default=128, show_default=True, help="Synthetic prompt length.")
@click.option(
    "--output-tokens", type=int, help="max_tokens of each request (default 128; a --dataset line's own if not given)."
)
@click.option("--dataset", type=click.Path(dir_okay=False), help='JSONL: one request body, or {"prompt": …}, per line.')
@click.option(
    "--no-metadata",
    is_flag=True,
    help='Leave out "metadata": {"bench_run": …} (some servers reject unknown fields); the tag header stays.',
)
@click.option("--goodput", help="SLOs in ms for goodput, e.g. ttft:500,tpot:50 (ttft, tpot, e2e).")
@click.option(
    "--sweep",
    help="One run per value, e.g. 1,2,4,8: concurrencies (with --rate: request rates); prints the "
    "throughput-vs-latency table that sizes a deployment.",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report here.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds per request.")
@click.option(
    "--keepalive/--no-keepalive",
    default=True,
    show_default=True,
    help="Reuse connections; --no-keepalive opens one per request (as vLLM's bench does) "
    "for servers that close kept-alive connections early.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no notes on stderr.")
@click.pass_context
def bench(
    ctx: click.Context,
    base_url: str,
    model: str | None,
    api_key: str | None,
    admin_key: str | None,
    endpoint: str,
    requests: int | None,
    duration: str | None,
    concurrency: int | None,
    rate: float | None,
    seed: int,
    warmup: int,
    stream: bool,
    input_tokens: int,
    output_tokens: int | None,
    dataset: str | None,
    no_metadata: bool,
    goodput: str | None,
    sweep: str | None,
    json_path: str | None,
    timeout: float,
    keepalive: bool,
    quiet: bool,
) -> None:
    """Benchmark a running model: `modelmeter bench --model NAME --requests 20 --concurrency 4`.

    Every request carries the tag bench:RUN (header x-modelmeter-tags). On a modelmeter server
    the run shows in the Usage tab filtered to that tag, and the report compares the client's
    figures with the server's records. Runs are remembered: see `bench list` and `bench compare`.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not model:
        fail("--model is required (the model or deployment to load)")
    for name, value in (
        ("--requests", requests),
        ("--concurrency", concurrency),
        ("--input-tokens", input_tokens),
        ("--output-tokens", output_tokens),
    ):
        at_least(name, value, 1)
    at_least("--warmup", warmup, 0)
    above_zero("--rate", rate)
    above_zero("--timeout", timeout)
    if not base_url.startswith(("http://", "https://")):
        fail(f"--base-url must be an http(s) URL (got {base_url!r})")
    try:
        seconds = load.parse_duration(duration) if duration is not None else None
        slos = metrics.parse_slos(goodput)
    except ValueError as exc:
        fail(str(exc))
    default_n = None if dataset else 100  # a data set: each line once
    shape = load.Shape(
        requests=requests if requests is not None or seconds is not None else default_n,
        duration=seconds,
        seed=seed,
        rate=rate,
        concurrency=concurrency if concurrency is not None or rate is not None else 1,
    )
    cfg = BenchConfig(
        model=model,
        run_id=runs.new_run_id(),
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        endpoint=endpoint,
        stream=stream,
        shape=shape,
        warmup=warmup,
        input_tokens=input_tokens,
        output_tokens=output_tokens if output_tokens is not None or dataset else 128,
        dataset=dataset,
        metadata=not no_metadata,
        slos=slos,
        timeout=timeout,
        progress=not quiet,
        seed=seed,
        keepalive=keepalive,
        admin_key=admin_key,
    )
    err = report.console(stderr=True, quiet=quiet)
    if sweep is not None:
        points = sweep_points(sweep, rate is not None)
        run_sweep(cfg, points, rate is not None, err, json_path, admin_key)
        return
    err.print(f"bench {cfg.run_id}: {shape.describe()} → {cfg.model} at {cfg.base_url} (tag {cfg.tag})")
    try:
        result = run_async(run_bench(cfg, lambda m: err.print(m, soft_wrap=True)))
    except BenchError as exc:
        fail(str(exc))
    save_run(runs.make_run(cfg.run_id, "bench", cfg.model, cfg.params(), result), json_path, err, admin_key)
    report.render(result)
    if result["interrupted"]:
        sys.exit(130)  # as a shell reports Ctrl-C, after the partial report
    if result["completed"] == 0 and result["failed"]:
        sys.exit(1)


def sweep_points(text: str, rates: bool) -> list[float]:
    """``1,2,4,8`` → the values (whole numbers for concurrencies, more than zero)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        fail(f"--sweep must be numbers separated by commas, e.g. 1,2,4,8 (got {text!r})")
    if not values or any(v <= 0 for v in values) or (not rates and any(v != int(v) for v in values)):
        what = "request rates above zero" if rates else "whole concurrencies of at least 1"
        fail(f"--sweep must list {what} (got {text!r})")
    return values


def run_sweep(
    cfg: BenchConfig, points: list[float], rates: bool, err: Console, json_path: str | None, admin_key: str | None
) -> None:
    """One run (its own id, tag and stored report) per point, then the curve as a table."""
    import dataclasses

    reports: list[dict[str, Any]] = []
    for value in points:
        shape = dataclasses.replace(cfg.shape, **({"rate": value} if rates else {"concurrency": int(value)}))
        point = dataclasses.replace(cfg, run_id=runs.new_run_id(), shape=shape)
        err.print(f"bench {point.run_id}: {shape.describe()} → {point.model} (tag {point.tag})")
        try:
            result = run_async(run_bench(point, lambda m: err.print(m, soft_wrap=True)))
        except BenchError as exc:
            fail(str(exc))
        save_run(runs.make_run(point.run_id, "bench", point.model, point.params(), result), None, err, admin_key)
        reports.append(result)
        if result["interrupted"]:
            break
    table = Table(title="Sweep: throughput vs latency", title_justify="left")
    for col in ("rate" if rates else "concurrency", "run", "req/s", "out tok/s", "TTFT p50", "TTFT p99", "E2E p50",
                "E2E p99", "ok"):  # fmt: skip
        table.add_column(col, no_wrap=True)
    for value, r in zip(points, reports, strict=False):
        ttft, e2e = r.get("ttft_ms") or {}, r.get("e2e_ms") or {}
        rate_ok = r.get("success_rate")
        table.add_row(
            f"{value:g}", r["run_id"], report.fmt(r.get("request_throughput")),
            report.fmt(r.get("output_token_throughput")), report.fmt(ttft.get("p50")), report.fmt(ttft.get("p99")),
            report.fmt(e2e.get("p50")), report.fmt(e2e.get("p99")), "-" if rate_ok is None else f"{rate_ok:.1%}",
        )  # fmt: skip
    report.console().print(table)
    if json_path:
        report.write_json({"sweep": [f"{v:g}" for v in points], "runs": reports}, json_path)


bench.add_command(list_cmd, "list")
bench.add_command(compare_cmd, "compare")
