"""Load shapes: N requests and/or a duration, at a fixed concurrency (closed loop) or at a request
rate with Poisson arrivals (open loop, seeded, optionally capped by a concurrency).

A duration stops the sending of new requests; those in flight are waited for, so every request
sent is counted. ``stop`` (Ctrl-C) cancels those in flight and ends the run early.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from modelmeter.bench.metrics import RequestResult

SendOne = Callable[[int], Awaitable[RequestResult]]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``60s``, ``2m``, ``1.5h``, ``500ms`` or plain seconds; ValueError if not positive."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"bad duration {text!r}: use e.g. 30s, 2m or 1h")
    seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"bad duration {text!r}: it must be more than zero")
    return seconds


@dataclass(frozen=True, slots=True)
class Shape:
    requests: int | None = None  # stop after this many (None: only the duration stops)
    duration: float | None = None  # seconds of sending
    concurrency: int | None = 1  # requests in flight at most (None: no cap, rate mode only)
    rate: float | None = None  # requests/s, Poisson arrivals (None: closed loop)
    seed: int = 0

    def describe(self) -> str:
        parts = []
        if self.requests is not None:
            parts.append(f"{self.requests} requests")
        if self.duration is not None:
            parts.append(f"{self.duration:g}s")
        if self.rate is not None:
            parts.append(f"{self.rate:g} req/s Poisson (seed {self.seed})")
        if self.concurrency is not None:
            parts.append(f"concurrency {self.concurrency}")
        return ", ".join(parts)


@dataclass(slots=True)
class Outcome:
    results: list[RequestResult] = field(default_factory=list)
    duration: float = 0.0  # first request sent → last response done
    interrupted: bool = False


async def run(
    shape: Shape, send_one: SendOne, on_result: Callable[[RequestResult], None], stop: asyncio.Event | None = None
) -> Outcome:
    out = Outcome()
    stop = stop or asyncio.Event()
    start = time.perf_counter()
    deadline = start + shape.duration if shape.duration is not None else None

    def record(r: RequestResult) -> None:
        out.results.append(r)
        on_result(r)

    if shape.rate is None:
        main = asyncio.ensure_future(_closed(shape, send_one, record, deadline))
    else:
        main = asyncio.ensure_future(_open(shape, send_one, record, deadline, start))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not main.done():
            out.interrupted = True
            main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main
    out.duration = time.perf_counter() - start
    return out


async def _closed(
    shape: Shape, send_one: SendOne, record: Callable[[RequestResult], None], deadline: float | None
) -> None:
    counter = itertools.count()
    limit = shape.requests
    clock = time.perf_counter

    async def worker() -> None:
        while True:
            i = next(counter)
            if (limit is not None and i >= limit) or (deadline is not None and clock() >= deadline):
                return
            record(await send_one(i))

    n = shape.concurrency or 1
    if limit is not None:
        n = min(n, limit)
    workers = [asyncio.ensure_future(worker()) for _ in range(max(n, 1))]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()


async def _open(
    shape: Shape, send_one: SendOne, record: Callable[[RequestResult], None], deadline: float | None, start: float
) -> None:
    assert shape.rate is not None
    rng = random.Random(shape.seed)
    sem = asyncio.Semaphore(shape.concurrency) if shape.concurrency else None
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        if sem is None:
            record(await send_one(i))
            return
        async with sem:
            record(await send_one(i))

    at = start
    try:
        for i in itertools.count():
            if shape.requests is not None and i >= shape.requests:
                break
            if i:
                at += rng.expovariate(shape.rate)
            if deadline is not None and at >= deadline:
                break
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*list(tasks))
    finally:
        for t in tasks:
            t.cancel()
