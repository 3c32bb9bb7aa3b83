"""Quality evaluation: a JSONL data set of prompts with expected answers, run against a model,
graded, and reported next to latency and (on a modelmeter server, from its records) cost.

Each line: ``{"prompt": …, "expected": …, "match": <a grader>}`` (or a chat request body with
``messages`` instead of ``prompt``); ``expected`` may be a list (any of them); an optional
``answer`` is the right answer as shown when ``expected`` is a pattern; ``tolerance`` widens a
number match. The run's ``grader`` (and ``tolerance``), when given, override every line's.
How each match grades: :mod:`modelmeter.bench.grading`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelmeter.bench import datasets, load, metrics, prompts, request, server
from modelmeter.bench.grading import GradingError, check_expected, grade
from modelmeter.bench.metrics import RequestResult
from modelmeter.bench.progress import ProgressBar
from modelmeter.bench.runner import BenchError, Hooks, check_target, ctrl_c_stops, sender
from modelmeter.bench.timeline import latency_timeline
from modelmeter.units import iso

DEFAULT_DATASET = datasets.BUNDLED[datasets.DEFAULT]


def bundled_dataset() -> Path:
    return datasets.bundled_path()


@dataclass
class EvalConfig:
    model: str
    run_id: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = None
    dataset: str | None = None  # a bundled set's name (datasets.BUNDLED) or a path; None: arithmetic
    endpoint: str = "chat"
    concurrency: int = 4
    max_tokens: int = 64
    stream: bool = True
    metadata: bool = True
    timeout: float = 600.0
    progress: bool = True
    keepalive: bool = True
    grader: str | None = None  # overrides each line's "match"
    tolerance: float | str | None = None  # with grader: overrides each line's "tolerance"
    admin_key: str | None = field(default=None, repr=False)  # a modelmeter /api: costs (a secret)

    @property
    def tag(self) -> str:
        return f"eval:{self.run_id}"

    @property
    def dataset_path(self) -> str:
        return datasets.resolve(self.dataset)[0]

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "endpoint": self.endpoint,
            "dataset": datasets.resolve(self.dataset)[1],
            "concurrency": self.concurrency,
            "max_tokens": self.max_tokens,
            "stream": self.stream,
            "load": f"each item once, concurrency {self.concurrency}",
            "metadata": self.metadata,
            "grader": self.grader,
            "tolerance": self.tolerance,
        }


def load_items(cfg: EvalConfig) -> list[prompts.Prompt]:
    try:
        items = prompts.load_dataset(cfg.dataset_path, cfg.endpoint, cfg.model, evaluation=True)
    except prompts.DatasetError as exc:
        raise BenchError(str(exc)) from None
    for i, item in enumerate(items, 1):
        if cfg.grader:
            item.match = cfg.grader
            item.tolerance = cfg.tolerance if cfg.tolerance is not None else item.tolerance
        try:
            check_expected(item.expected, item.match, item.tolerance)
        except GradingError as exc:
            raise BenchError(f"{cfg.dataset_path}: item {i}: {exc}") from None
    return items


def _prompt_text(item: prompts.Prompt) -> str:
    if "messages" in item.body:
        last = item.body["messages"][-1]
        content = last.get("content") if isinstance(last, dict) else None
        return content if isinstance(content, str) else str(content)
    return str(item.body.get("prompt"))


async def run_eval(
    cfg: EvalConfig, notify: Callable[[str], None] = lambda _: None, hooks: Hooks | None = None
) -> dict[str, Any]:
    hooks = hooks or Hooks()
    items = load_items(cfg)
    async with request.new_session(cfg.concurrency, cfg.timeout, cfg.keepalive) as session:
        checked = await check_target(session, cfg.base_url, cfg.model, cfg.api_key, cfg.admin_key, notify)
        target = request.Target(
            checked.base_url + prompts.ENDPOINTS[cfg.endpoint],
            prompts.CALL_TYPES[cfg.endpoint],
            cfg.model,
            cfg.stream,
            keep_text=True,
        )
        meta = {"eval_run": cfg.run_id} if cfg.metadata else None
        bodies = [
            prompts.request_body(
                p,
                cfg.model,
                cfg.endpoint,
                stream=cfg.stream,
                max_tokens=None,
                metadata=meta,
                defaults={"temperature": 0, "max_tokens": cfg.max_tokens},
            )
            for p in items
        ]
        usage_url = server.usage_url(checked.root, cfg.model, cfg.tag) if checked.modelmeter else None
        if usage_url:
            notify(f"Watch this run live: {usage_url}")
        send = sender(session, target, bodies, request.headers(cfg.api_key, cfg.tag), items)
        shape = load.Shape(requests=len(items), concurrency=cfg.concurrency)
        stop = hooks.stop or asyncio.Event()
        started = time.time()
        bar = ProgressBar(f"eval {cfg.run_id}", len(items), None, cfg.progress)
        with ctrl_c_stops(stop):
            async with bar:
                outcome = await load.run(shape, send, hooks.adder(bar.add), stop)
        costs: dict[str, float] = {}
        spend = None
        stored = None
        if not outcome.interrupted:
            try:
                stored = await hooks.records(checked, cfg.model, cfg.tag, started, len(outcome.results))
            except server.Unreachable as exc:
                notify(f"could not read the server's records for {cfg.tag}: {exc}")
        if stored is not None:
            spend = stored["summary"].get("spend")
            costs = {r["request_id"]: float(r.get("spend") or 0.0) for r in stored["records"] if r.get("request_id")}
    result = _report(cfg, items, outcome, checked.base_url, usage_url, started, spend, costs)
    result["server_access"] = checked.access
    result["latency_timeline"] = latency_timeline(outcome.results)
    return result


def _report(
    cfg: EvalConfig,
    items: list[prompts.Prompt],
    outcome: load.Outcome,
    base_url: str,
    usage_url: str | None,
    started: float,
    spend: float | None,
    costs: dict[str, float],
) -> dict[str, Any]:
    by_index: dict[int, RequestResult] = {r.index: r for r in outcome.results}
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        r = by_index.get(i)
        answer = r.text if r is not None and r.ok else None
        rows.append(
            {
                "index": i,
                "prompt": _prompt_text(item),
                "expected": item.expected,
                "match": item.match,
                "answer_expected": item.answer,
                "answer": answer,
                "tolerance": item.tolerance,
                "correct": grade(answer, item.expected, item.match, item.tolerance),
                "latency_ms": round(r.e2e * 1000, 3) if r is not None and r.ok else None,
                "ttft_ms": round(r.ttft * 1000, 3) if r is not None and r.ok and r.ttft is not None else None,
                "prompt_tokens": r.prompt_tokens if r is not None else None,
                "completion_tokens": r.completion_tokens if r is not None else None,
                "cost": costs.get(r.response_id) if r is not None and r.response_id else None,
                "error": None if r is None else r.error,
            }
        )
    ok = [r for r in outcome.results if r.ok]
    correct = sum(1 for row in rows if row["correct"])
    n = len(items)
    return {
        "run_id": cfg.run_id,
        "kind": "eval",
        "model": cfg.model,
        "base_url": base_url,
        "endpoint": cfg.endpoint,
        "dataset": cfg.params()["dataset"],
        "started_at": iso(int(started * 1e6)),
        "interrupted": outcome.interrupted,
        "items": n,
        "answered": len(ok),
        "correct": correct,
        "accuracy": round(correct / n, 6) if n else None,
        "failed": len(outcome.results) - len(ok),
        "duration_s": round(outcome.duration, 6),
        "e2e_ms": metrics.distribution(r.e2e for r in ok),
        "ttft_ms": metrics.distribution(r.ttft for r in ok if r.ttft is not None),
        "histograms_ms": {
            "ttft": metrics.histogram(r.ttft for r in ok if r.ttft is not None),
            "e2e": metrics.histogram(r.e2e for r in ok),
        },
        "total_input_tokens": sum(r.prompt_tokens for r in ok),
        "total_output_tokens": sum(r.completion_tokens for r in ok),
        "cost_total": spend,
        "cost_per_item": None if spend is None or not n else spend / n,
        "usage_url": usage_url,
        "errors": metrics.error_counts(outcome.results),
        "results": rows,
    }
