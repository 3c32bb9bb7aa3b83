"""A sweep on the server: one bench run per load level (concurrency or request rate), one after
the other in one thread, each a run of its own (its tag, records and report, listed with the
others); the sweep is a run of kind ``sweep`` whose report holds one point per level, the curve
of throughput against latency that sizes a deployment.

Its report, written twice a second while it runs (the page polls it, as any run's):
``{"status", "sweep_by", "levels", "points": [{"level", "run_id", "status", "completed",
"failed", "request_throughput", "output_token_throughput", "e2e_p50_ms", "e2e_p95_ms",
"ttft_p50_ms", "ttft_p95_ms", "success_rate", "live"}], "live"}``; a level not reached yet is
``{"level", "status": "pending"}``. Stopping the sweep stops its current run and skips the rest.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from modelmeter.bench import runs as local_runs
from modelmeter.runs.manager import FLUSH_S, Active, RunManager, live_figures
from modelmeter.runs.spec import RunStart
from modelmeter.storage import runs as runs_db


def point_figures(level: float, run_id: str, report: dict[str, Any]) -> dict[str, Any]:
    """One point of the curve from its bench run's final report."""
    e2e, ttft = report.get("e2e_ms") or {}, report.get("ttft_ms") or {}
    return {
        "level": level,
        "run_id": run_id,
        "status": report.get("status", "done"),
        "error": report.get("error"),
        "completed": report.get("completed"),
        "failed": report.get("failed"),
        "request_throughput": report.get("request_throughput"),
        "output_token_throughput": report.get("output_token_throughput"),
        "e2e_p50_ms": e2e.get("p50"),
        "e2e_p95_ms": e2e.get("p95"),
        "ttft_p50_ms": ttft.get("p50"),
        "ttft_p95_ms": ttft.get("p95"),
        "success_rate": report.get("success_rate"),
    }


class Sweep:
    def __init__(self, manager: RunManager, spec: RunStart, base_url: str, api_key: str | None) -> None:
        self.manager = manager
        self.spec = spec
        self.base_url = base_url
        self.api_key = api_key
        self.levels = list(spec.levels or [])
        self.active = Active(local_runs.new_run_id(), len(self.levels), None)
        self.current: Active | None = None
        self.points: list[dict[str, Any]] = [{"level": v, "status": "pending"} for v in self.levels]

    def report(self, status: str) -> dict[str, Any]:
        points = [dict(p) for p in self.points]
        live = live_figures(self.current or self.active)
        for p in points:
            if p["status"] == "running" and self.current is not None:
                p["live"] = live
        return {"status": status, "sweep_by": self.spec.sweep_by, "levels": self.levels, "points": points, "live": live}

    def store(self) -> dict[str, Any]:
        run = runs_db.insert_run(
            self.manager.db,
            {
                "id": self.active.run_id,
                "kind": "sweep",
                "deployment": self.spec.model,
                "created_us": int(time.time() * 1e6),
                "params": {**self.spec.sweep_params(), "origin": "server", "base_url": self.base_url},
                "report": self.report("running"),
            },
        )
        self.manager.register(self.active)
        return run

    def thread(self) -> None:
        try:
            asyncio.run(self.main())
        finally:
            self.manager.unregister(self.active.run_id)

    async def main(self) -> None:
        self.active.loop = asyncio.get_running_loop()
        self.active.stop = asyncio.Event()
        if self.active.stopping:
            self.active.stop.set()
        watcher = asyncio.ensure_future(self._stop_current())
        flusher = asyncio.ensure_future(self._flush())
        status = "done"
        try:
            status = await self._levels()
        except Exception as exc:  # the sweep's failure is its report, never a dead thread
            status = "failed"
            self.points.append({"level": None, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        finally:
            watcher.cancel()
            flusher.cancel()
        self.current = None
        await asyncio.to_thread(self.manager.write, self.active, self.report(status), True)

    async def _levels(self) -> str:
        assert self.active.stop is not None
        for i, level in enumerate(self.levels):
            if self.active.stop.is_set():
                return "stopped"
            point = self.spec.point(level)
            extra = {"sweep": self.active.run_id, "sweep_level": level}
            run, active, head = await asyncio.to_thread(self.manager.insert, point, self.base_url, self.api_key, extra)
            self.current = active
            if self.active.stop.is_set():  # asked while the run was being stored: it stops at once
                active.stopping = True
            self.points[i] = {"level": level, "run_id": run["id"], "status": "running"}
            try:
                final = await self.manager.execute(point, active, self.base_url, self.api_key, head)
            finally:
                self.manager.unregister(active.run_id)
            self.points[i] = point_figures(level, run["id"], final)
            if final.get("status") == "failed":
                return "failed"
            if final.get("status") == "stopped" and self.active.stop.is_set():
                return "stopped"
        return "done"

    async def _stop_current(self) -> None:
        assert self.active.stop is not None
        await self.active.stop.wait()
        current = self.current
        if current is not None:
            current.stopping = True
            if current.stop is not None:
                current.stop.set()

    async def _flush(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await asyncio.to_thread(self.manager.write, self.active, self.report("running"))
            stored = await asyncio.to_thread(runs_db.get_run, self.manager.db, self.active.run_id)
            if stored and stored["params"].get("stop_requested") and self.active.stop is not None:
                self.active.stop.set()


def start_sweep(manager: RunManager, spec: RunStart, base_url: str, api_key: str | None) -> dict[str, Any]:
    """Store the sweep as running and start its thread; the stored sweep is returned."""
    sweep = Sweep(manager, spec, base_url, api_key)
    run = sweep.store()
    threading.Thread(target=sweep.thread, name=f"sweep-{sweep.active.run_id}", daemon=True).start()
    return run
