"""Server-side runs: each in a thread with its own event loop, so the load generator, its JSON and
its statistics never run on the loop that relays /v1 traffic; its requests go through the
gateway's own /v1 like any client's. Its state lives in the ``runs`` table: progress is written
twice a second (the page polls it, any worker can answer), then the final report.

A stop asked in this process sets the run's event; one asked in another worker is written to the
run's params (which the run never writes) and seen at the next progress write.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from modelmeter.bench import runs as local_runs
from modelmeter.bench import server
from modelmeter.bench.eval import run_eval
from modelmeter.bench.metrics import percentile
from modelmeter.bench.progress import LiveStats
from modelmeter.bench.runner import BenchError, Hooks, run_bench
from modelmeter.runs.reader import reader
from modelmeter.runs.spec import RunStart
from modelmeter.storage import runs as runs_db
from modelmeter.storage.database import Database

log = logging.getLogger("modelmeter.runs")
FLUSH_S = 0.5
STALE_S = 30.0  # a "running" run whose progress is older than this was lost with its process


@dataclass
class Active:
    run_id: str
    total: int | None
    duration: float | None
    stats: LiveStats = field(default_factory=LiveStats)
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None
    stopping: bool = False
    finished: bool = False
    write_lock: threading.Lock = field(default_factory=threading.Lock)


def live_figures(a: Active) -> dict[str, Any]:
    s = a.stats
    elapsed = max(time.perf_counter() - s.started, 1e-9)
    ttfts = sorted(s.ttfts)
    return {
        "done": s.done,
        "failed": s.failed,
        "total": a.total,
        "duration_s": a.duration,
        "elapsed_s": round(elapsed, 3),
        "req_s": round(s.done / elapsed, 3),
        "tokens_s": round(s.output_tokens / elapsed, 3),
        "output_tokens": s.output_tokens,
        "ttft_p50_ms": round(percentile(ttfts, 50) * 1000, 3) if ttfts else None,
        "updated_us": int(time.time() * 1e6),
    }


def with_status(run: dict[str, Any]) -> dict[str, Any]:
    """A run whose progress stopped long ago without an end is shown as lost."""
    report = run.get("report")
    if isinstance(report, dict) and report.get("status") == "running":
        updated = (report.get("live") or {}).get("updated_us") or 0
        if time.time() * 1e6 - updated > STALE_S * 1e6:
            run["report"] = {**report, "status": "lost"}
    return run


class RunManager:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._active: dict[str, Active] = {}
        self._lock = threading.Lock()

    def start(self, spec: RunStart, base_url: str, api_key: str | None = None) -> dict[str, Any]:
        """Store the run as running and start its thread; the stored run is returned."""
        if spec.kind == "sweep":
            from modelmeter.runs.sweep import start_sweep  # a sweep drives this manager's bench runs

            return start_sweep(self, spec, base_url, api_key)
        run, active, head = self.insert(spec, base_url, api_key)
        thread = threading.Thread(
            target=self._thread, args=(spec, active, base_url, api_key, head), name=f"run-{active.run_id}", daemon=True
        )
        thread.start()
        return run

    def insert(
        self, spec: RunStart, base_url: str, api_key: str | None, extra: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], Active, dict[str, Any]]:
        """Store a bench or eval run as running and register it (stoppable); its thread is the caller's."""
        run_id = local_runs.new_run_id()
        if spec.kind == "bench":
            bench = spec.bench_config(run_id, base_url, api_key)
            params, tag = bench.params(), bench.tag
            total, duration = bench.shape.requests, bench.shape.duration
            seconds = bench.expected_seconds()
        else:
            ev = spec.eval_config(run_id, base_url, api_key)
            params, tag = ev.params(), ev.tag
            total, duration, seconds = None, None, None
        params = {**params, "origin": "server", "base_url": base_url, **(extra or {})}
        active = Active(run_id, total, duration)
        report: dict[str, Any] = {"status": "running", "tag": tag, "usage_url": self.page_url(spec.model, tag, seconds)}
        report["live"] = live_figures(active)
        run = runs_db.insert_run(
            self.db,
            {
                "id": run_id,
                "kind": spec.kind,
                "deployment": spec.model,
                "created_us": int(time.time() * 1e6),
                "params": params,
                "report": report,
            },
        )
        self.register(active)
        return run, active, report

    def register(self, active: Active) -> None:
        with self._lock:
            self._active[active.run_id] = active

    def unregister(self, run_id: str) -> None:
        with self._lock:
            self._active.pop(run_id, None)

    @staticmethod
    def page_url(model: str, tag: str, seconds: float | None) -> str:
        """The Usage tab filtered to the run (a path: the page is on this server)."""
        return server.usage_url("", model, tag, seconds)

    def stop(self, run_id: str) -> bool:
        """Ask a run to stop; False when it is not running."""
        with self._lock:
            active = self._active.get(run_id)
        if active is not None:
            if active.finished:
                return False
            active.stopping = True
            if active.loop is not None and active.stop is not None:
                active.loop.call_soon_threadsafe(active.stop.set)
            return True
        run = runs_db.get_run(self.db, run_id)
        if run is None or (run.get("report") or {}).get("status") != "running":
            return False
        runs_db.update_params(self.db, run_id, {**run["params"], "stop_requested": True})
        return True

    def _thread(self, spec: RunStart, active: Active, base_url: str, api_key: str | None, head: dict[str, Any]) -> None:
        try:
            asyncio.run(self.execute(spec, active, base_url, api_key, head))
        finally:
            self.unregister(active.run_id)

    async def execute(
        self, spec: RunStart, active: Active, base_url: str, api_key: str | None, head: dict[str, Any]
    ) -> dict[str, Any]:
        """Run a stored bench or eval run on this loop to its end; its final report is stored and returned."""
        active.loop = asyncio.get_running_loop()
        active.stop = asyncio.Event()
        if active.stopping:
            active.stop.set()
        hooks = Hooks(stop=active.stop, on_result=active.stats.add, read_records=reader(self.db))
        flusher = asyncio.ensure_future(self._flush(active, head))
        final: dict[str, Any]
        try:
            if spec.kind == "bench":
                result = await run_bench(spec.bench_config(active.run_id, base_url, api_key), hooks=hooks)
            else:
                result = await run_eval(spec.eval_config(active.run_id, base_url, api_key), hooks=hooks)
            final = {**result, "status": "stopped" if result.get("interrupted") else "done"}
        except BenchError as exc:
            final = {"status": "failed", "error": str(exc)}
        except Exception as exc:  # the run's failure is its report, never a dead thread
            log.exception("run %s failed", active.run_id)
            final = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        finally:
            flusher.cancel()
        final = {**final, "tag": head["tag"], "usage_url": head["usage_url"], "live": live_figures(active)}
        await asyncio.to_thread(self.write, active, final, True)
        return final

    def write(self, active: Active, report: dict[str, Any], final: bool = False) -> None:
        # A progress write still in its thread when the run ends must not land after the final one.
        with active.write_lock:
            if active.finished:
                return
            active.finished = final
            runs_db.update_report(self.db, active.run_id, report)

    async def _flush(self, active: Active, head: dict[str, Any]) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            report = {**head, "live": live_figures(active)}
            await asyncio.to_thread(self.write, active, report)
            stored = await asyncio.to_thread(runs_db.get_run, self.db, active.run_id)
            if stored and stored["params"].get("stop_requested") and active.stop is not None:
                active.stop.set()
