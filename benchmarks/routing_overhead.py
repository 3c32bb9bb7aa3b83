"""What routing adds to a call, in process: the same chat call through the gateway's ASGI handler to
an in-memory upstream, for a one-upstream deployment and a two-upstream one (weights 3:1), alternating
in blocks so machine load falls on both alike. Prints each one's p50 / mean per call, the difference,
and how the recorded calls split between the two upstreams (``served_by``, from the database).

    PYTHONPATH=src python benchmarks/routing_overhead.py [--calls 20000]

The wrk benchmark (overhead.py --upstreams 2) measures the same through a real server, where a
shared machine's noise is far larger than the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import MemoryUpstream, asgi_request, running_app, sqlite_url

BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


async def main(calls: int, block: int, one_only: bool) -> None:
    deployments: list[dict[str, Any]] = [{"name": "one", "model": "m", "api_base": "http://u1/v1"}]
    if not one_only:
        deployments.append(
            {
                "name": "two",
                "model": "m",
                "upstreams": [
                    {"name": "u1", "api_base": "http://u1/v1", "weight": 3},
                    {"name": "u2", "api_base": "http://u2/v1", "weight": 1},
                ],
            }
        )
    names = [d["name"] for d in deployments]
    with tempfile.TemporaryDirectory() as tmp:
        async with running_app(sqlite_url(Path(tmp) / "mm.db"), deployments, MemoryUpstream()) as harness:
            times: dict[str, list[float]] = {n: [] for n in names}
            for name in names:  # warm up
                for _ in range(200):
                    await asgi_request(harness.app, "POST", "/v1/chat/completions", {**BODY, "model": name})
            for i in range(calls // block):
                for name in names if i % 2 == 0 else names[::-1]:
                    body = {**BODY, "model": name}
                    for _ in range(block):
                        t = time.perf_counter()
                        res = await asgi_request(harness.app, "POST", "/v1/chat/completions", body)
                        times[name].append(time.perf_counter() - t)
                        assert res.status == 200, res.body
            if not one_only:
                total = calls + 200  # with the warm-up
                while harness.app.state.recorder.written < total * len(names):
                    await asyncio.sleep(0.01)
                split = harness.db.fetchall(
                    "SELECT served_by, COUNT(*) FROM records WHERE deployment = 'two' GROUP BY served_by ORDER BY 1"
                )
                shares = ", ".join(f"{name} {n} ({100 * n / total:.1f}%)" for name, n in split)
                print(f"two upstreams, weights 3:1: {shares}")
    p50 = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    mean = {k: statistics.fmean(v) * 1e6 for k, v in times.items()}
    for k in times:
        print(f"{k} upstream(s): p50 {p50[k]:.1f} µs, mean {mean[k]:.1f} µs per call ({len(times[k])} calls)")
    if one_only:
        return
    print(f"routing adds: p50 {p50['two'] - p50['one']:+.1f} µs, mean {mean['two'] - mean['one']:+.1f} µs")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=20000, help="calls per deployment")
    p.add_argument("--block", type=int, default=500, help="calls in a row before switching")
    p.add_argument("--one-only", action="store_true", help="only the one-upstream deployment (to compare builds)")
    a = p.parse_args()
    asyncio.run(main(a.calls, a.block, a.one_only))
