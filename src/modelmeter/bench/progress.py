"""The live progress bar on stderr: done/failed, requests/s, tokens/s and the running p50 TTFT.

Results are counted as they come (a few additions per request); the bar itself is redrawn by an
asyncio task four times a second, never by a thread, so it costs the load generator next to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from modelmeter.bench.metrics import RequestResult, percentile


class LiveStats:
    __slots__ = ("done", "failed", "output_tokens", "started", "ttfts")

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0
        self.output_tokens = 0
        self.ttfts: deque[float] = deque(maxlen=2000)  # the latest, for a running median
        self.started = time.perf_counter()

    def add(self, r: RequestResult) -> None:
        self.done += 1
        if not r.ok:
            self.failed += 1
            return
        self.output_tokens += r.completion_tokens
        if r.ttft is not None:
            self.ttfts.append(r.ttft)

    def line(self, total: int | None = None) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        ttft = f"{percentile(sorted(self.ttfts), 50) * 1000:.0f} ms" if self.ttfts else "-"
        done = f"{self.done}/{total}" if total is not None else str(self.done)
        return (
            f"{done} done, {self.failed} failed · {self.done / elapsed:.1f} req/s · "
            f"{self.output_tokens / elapsed:.0f} tok/s · p50 TTFT {ttft}"
        )


class ProgressBar:
    """``with ProgressBar(total, duration, enabled) as bar: bar.add(result)``."""

    def __init__(self, label: str, total: int | None, duration: float | None, enabled: bool) -> None:
        self.stats = LiveStats()
        self.total = total
        self.duration = duration
        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[figures]}"),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=False,
            transient=False,
        )
        self._task = self._progress.add_task(label, total=self._bar_total(), figures="")
        self._ticker: asyncio.Task[None] | None = None

    def _bar_total(self) -> float | None:
        return float(self.total) if self.total is not None else self.duration

    def add(self, r: RequestResult) -> None:
        self.stats.add(r)

    def _draw(self) -> None:
        s = self.stats
        if self.total is not None:
            done: float = s.done
        else:
            done = min(time.perf_counter() - s.started, self.duration or 0.0)
        self._progress.update(self._task, completed=done, figures=s.line(self.total))
        self._progress.refresh()

    async def _tick(self) -> None:
        while True:
            self._draw()
            await asyncio.sleep(0.25)

    async def __aenter__(self) -> ProgressBar:
        self.stats.started = time.perf_counter()
        if self.enabled:
            self._progress.start()
            self._ticker = asyncio.ensure_future(self._tick())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self.enabled:
            self._draw()
            self._progress.stop()
