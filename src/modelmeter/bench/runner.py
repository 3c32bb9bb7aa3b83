"""A whole benchmark run: check the target, build the requests, warm up, drive the load with a
live progress bar, compute the figures and, on a modelmeter server, compare them with what the
server recorded for the run's tag."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from modelmeter.bench import load, metrics, prompts, request, server
from modelmeter.bench.metrics import RequestResult
from modelmeter.bench.progress import ProgressBar
from modelmeter.bench.timeline import latency_timeline
from modelmeter.units import iso

PROMPT_POOL = 256  # distinct synthetic prompts, reused in turn past that many requests


class BenchError(Exception):
    """A run that cannot start (bad target, model, data set): one line for the user."""


@dataclass
class BenchConfig:
    model: str
    run_id: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = None
    endpoint: str = "chat"
    stream: bool = True
    shape: load.Shape = field(default_factory=load.Shape)
    warmup: int = 0
    input_tokens: int = 128
    output_tokens: int | None = 128
    dataset: str | None = None
    metadata: bool = True
    slos: dict[str, float] = field(default_factory=dict)
    timeout: float = 600.0
    progress: bool = True
    seed: int = 0
    keepalive: bool = True
    admin_key: str | None = field(default=None, repr=False)  # a modelmeter /api: server figures (a secret)

    @property
    def tag(self) -> str:
        return f"bench:{self.run_id}"

    def expected_seconds(self) -> float | None:
        """How long the run may take when the load shape says: its duration, or N requests at a
        rate (whichever ends first); None when unknown (a closed loop's pace is the server's)."""
        s = self.shape
        paced = s.requests / s.rate if s.requests is not None and s.rate else None
        known = [t for t in (s.duration, paced) if t is not None]
        return min(known) if known else None

    def params(self) -> dict[str, Any]:
        s = self.shape
        return {
            "model": self.model,
            "base_url": self.base_url,
            "endpoint": self.endpoint,
            "stream": self.stream,
            "load": s.describe(),
            "requests": s.requests,
            "duration_s": s.duration,
            "concurrency": s.concurrency,
            "rate": s.rate,
            "seed": s.seed,
            "warmup": self.warmup,
            "input_tokens": None if self.dataset else self.input_tokens,
            "output_tokens": self.output_tokens,
            "dataset": self.dataset,
            "metadata": self.metadata,
            "goodput_slos_ms": self.slos or None,
            "keepalive": self.keepalive,
        }


# (model, tag, wall-clock start, requests expected) → {"summary": …, "records": […]}
ReadRecords = Callable[[str, str, float, int], Awaitable[dict[str, Any]]]


@dataclass
class Hooks:
    """What a run the server starts adds to the CLI's: a stop of its own, a callback per result
    (its live figures), and the server's records read in-process (it holds no admin key)."""

    stop: asyncio.Event | None = None
    on_result: Callable[[RequestResult], None] | None = None
    read_records: ReadRecords | None = None

    def adder(self, bar_add: Callable[[RequestResult], None]) -> Callable[[RequestResult], None]:
        extra = self.on_result
        if extra is None:
            return bar_add

        def both(r: RequestResult) -> None:
            bar_add(r)
            extra(r)

        return both

    async def records(self, target: Target, model: str, tag: str, started: float, n: int) -> dict[str, Any] | None:
        """The server's records for the run, or None when they cannot be read."""
        if self.read_records is not None:
            return await self.read_records(model, tag, started, n)
        if not target.readable:
            return None
        return await server.recorded(target.session, target.root, model, tag, started, n, target.admin_headers)


@dataclass
class Target:
    """A checked target: where to send, and whether it is a modelmeter server we may read."""

    base_url: str
    root: str
    access: server.Access
    admin_headers: dict[str, str] = field(default_factory=dict, repr=False)  # holds the admin key
    session: Any = field(default=None, repr=False)  # the run's aiohttp session

    @property
    def modelmeter(self) -> bool:
        """A modelmeter server, whether or not its /api lets us in (its Usage tab exists)."""
        return self.access != "none"

    @property
    def readable(self) -> bool:
        return self.access == "open"


async def check_target(
    session: aiohttp.ClientSession,
    base_url: str,
    model: str,
    api_key: str | None,
    admin_key: str | None = None,
    notify: Callable[[str], None] = lambda _: None,
) -> Target:
    try:
        models = await server.served_models(session, base_url, request.headers(api_key, None))
    except server.Unreachable as exc:
        raise BenchError(f"cannot reach {base_url}: {exc}") from None
    if models is not None and model not in models:
        served = ", ".join(models[:20]) or "no models"
        raise BenchError(f"unknown model {model!r} at {base_url} (it serves: {served})")
    root = server.root_of(base_url)
    admin = server.api_headers(admin_key)
    access = await server.api_access(session, root, admin)
    if access == "locked":
        notify(server.locked_note(root, admin_key))
    return Target(base_url.rstrip("/"), root, access, admin, session)


def build_prompts(cfg: BenchConfig) -> list[prompts.Prompt]:
    if cfg.dataset:
        try:
            return prompts.load_dataset(cfg.dataset, cfg.endpoint, cfg.model)
        except prompts.DatasetError as exc:
            raise BenchError(str(exc)) from None
    wanted = cfg.shape.requests if cfg.shape.requests is not None else PROMPT_POOL
    return prompts.synthetic(cfg.endpoint, cfg.model, cfg.input_tokens, max(1, min(wanted, PROMPT_POOL)), seed=cfg.seed)


@contextlib.contextmanager
def ctrl_c_stops(stop: asyncio.Event) -> Iterator[None]:
    """The first Ctrl-C ends the run early (with a report); the default handler is restored after."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, stop.set)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):
        installed = False
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def sender(
    session: aiohttp.ClientSession,
    target: request.Target,
    bodies: list[bytes],
    hdrs: dict[str, str],
    pool: list[prompts.Prompt],
) -> load.SendOne:
    n = len(bodies)

    def send_one(i: int) -> Any:
        k = i % n
        return request.send(session, target, bodies[k], hdrs, pool[k].prompt_tokens, i)

    return send_one


async def run_bench(
    cfg: BenchConfig, notify: Callable[[str], None] = lambda _: None, hooks: Hooks | None = None
) -> dict[str, Any]:
    hooks = hooks or Hooks()
    pool = build_prompts(cfg)
    if cfg.shape.requests is None and cfg.shape.duration is None:
        cfg.shape = dataclasses.replace(cfg.shape, requests=len(pool))  # a data set: each line once
    limit = cfg.shape.concurrency or 0
    async with request.new_session(limit, cfg.timeout, cfg.keepalive) as session:
        checked = await check_target(session, cfg.base_url, cfg.model, cfg.api_key, cfg.admin_key, notify)
        path = prompts.ENDPOINTS[cfg.endpoint]
        target = request.Target(
            checked.base_url + path,
            prompts.CALL_TYPES[cfg.endpoint],
            cfg.model,
            cfg.stream and cfg.endpoint != "embeddings",
        )
        max_tokens = cfg.output_tokens

        def bodies(run_value: str) -> list[bytes]:
            meta = {"bench_run": run_value} if cfg.metadata else None
            return [
                prompts.request_body(
                    p, cfg.model, cfg.endpoint, stream=target.stream, max_tokens=max_tokens, metadata=meta
                )
                for p in pool
            ]

        seconds = cfg.expected_seconds()
        usage_url = server.usage_url(checked.root, cfg.model, cfg.tag, seconds) if checked.modelmeter else None
        if usage_url:
            notify(f"Watch this run live: {usage_url}")
        if cfg.warmup:
            notify(f"Warming up with {cfg.warmup} request(s), tagged {cfg.tag}:warmup")
            warm = load.Shape(requests=cfg.warmup, concurrency=min(cfg.shape.concurrency or 1, cfg.warmup))
            send_warm = sender(
                session, target, bodies(f"{cfg.run_id}:warmup"), request.headers(cfg.api_key, f"{cfg.tag}:warmup"), pool
            )
            await load.run(warm, send_warm, lambda _: None)
        send = sender(session, target, bodies(cfg.run_id), request.headers(cfg.api_key, cfg.tag), pool)
        stop = hooks.stop or asyncio.Event()
        started = time.time()
        bar = ProgressBar(f"bench {cfg.run_id}", cfg.shape.requests, cfg.shape.duration, cfg.progress)
        with ctrl_c_stops(stop):
            async with bar:
                outcome = await load.run(cfg.shape, send, hooks.adder(bar.add), stop)
        report: dict[str, Any] = {
            "run_id": cfg.run_id,
            "kind": "bench",
            "model": cfg.model,
            "base_url": checked.base_url,
            "endpoint": cfg.endpoint,
            "stream": target.stream,
            "load": cfg.shape.describe(),
            "started_at": iso(int(started * 1e6)),
            "warmup": cfg.warmup,
            "interrupted": outcome.interrupted,
        }
        report.update(metrics.figures(outcome.results, outcome.duration, cfg.slos))
        report["errors"] = metrics.error_counts(outcome.results)
        report["latency_timeline"] = latency_timeline(outcome.results)
        report["usage_url"] = usage_url
        report["server_access"] = checked.access
        report["server_comparison"] = None
        if not outcome.interrupted:
            try:
                stored = await hooks.records(checked, cfg.model, cfg.tag, started, len(outcome.results))
                if stored is not None:
                    report["server_comparison"] = server.compare(outcome.results, stored, cfg.tag)
            except server.Unreachable as exc:
                notify(f"could not read the server's records for {cfg.tag}: {exc}")
        return report
