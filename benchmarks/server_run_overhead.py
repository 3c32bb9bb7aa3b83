#!/usr/bin/env python3
"""The gateway's overhead while a server-side run drives it (issue #13), next to the same load from
the CLI in a process of its own, in one run.

    python benchmarks/server_run_overhead.py                      # 3,000 streamed requests, concurrency 8
    python benchmarks/server_run_overhead.py --requests 5000 --concurrency 16 --repeat 3

A static nginx upstream (benchmarks/bench_client.py's: 7 content chunks, a usage chunk) on one core,
``modelmeter serve`` on SQLite on the other. Each load is ``requests`` streamed calls at
``concurrency``, alternately from ``modelmeter bench`` (a separate process, pinned with the nginx) and
from ``POST /api/runs`` (the runner's thread inside the server process, sharing its core and GIL with
the event loop). Reported per load, from the server's own records of the window: the gateway overhead
each record carries (``overhead_ms``: time spent in modelmeter, not upstream) at p50/p99, the
requests/s the load reached, and the server process's CPU per request (user + system, which for the
server-side run includes the load generator itself).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_client import MODEL, free_port, start_nginx  # type: ignore[import-not-found]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def api(port: int, key: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST" if data else "GET")
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def start_server(tmp: Path, upstream: int, core: str, key: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cfg = tmp / "modelmeter.toml"
    cfg.write_text(
        f'[server]\nport = {port}\ndatabase = "sqlite:///{tmp}/mm.db"\n\n'
        f'[[deployments]]\nname = "{MODEL}"\napi_base = "http://127.0.0.1:{upstream}/sse/v1"\n'
        "price = { input = 1.0, output = 2.0 }\n"
    )
    env = {**os.environ, "MODELMETER_ADMIN_KEY": key, "MODELMETER_HOME": str(tmp)}
    cmd = ["taskset", "-c", core, sys.executable, "-m", "modelmeter.cli.main", "serve", "--config", str(cfg)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=(tmp / "serve.log").open("wb"))
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / "serve.log").read_text()) from None
            time.sleep(0.1)


def cli_load(port: int, key: str, args: argparse.Namespace, tmp: Path) -> None:
    cmd = ["taskset", "-c", args.nginx_core, sys.executable, "-m", "modelmeter.cli.main", "bench"]
    cmd += ["--base-url", f"http://127.0.0.1:{port}/v1", "--model", MODEL, "--quiet", "--stream"]
    cmd += ["--requests", str(args.requests), "--concurrency", str(args.concurrency)]
    cmd += ["--input-tokens", "16", "--output-tokens", "7"]
    env = {**os.environ, "MODELMETER_ADMIN_KEY": key, "MODELMETER_HOME": str(tmp)}
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def server_load(port: int, key: str, args: argparse.Namespace) -> None:
    spec = {"kind": "bench", "model": MODEL, "requests": args.requests, "concurrency": args.concurrency}
    run = api(port, key, "/api/runs", {**spec, "stream": True, "input_tokens": 16, "output_tokens": 7})
    while True:
        time.sleep(0.2)
        report = api(port, key, f"/api/runs/{run['id']}").get("report") or {}
        status = report.get("status")  # type: ignore[union-attr]
        if status != "running":
            if status != "done":
                raise RuntimeError(f"server run ended {status}: {report}")
            return


def recorded(db: Path, start_us: int, end_us: int, expected: int) -> tuple[list[float], float]:
    """The load's overheads, sorted, and its requests/s from the records' own times (first start to
    last end: the CLI's start-up and report are not part of the load)."""
    deadline = time.monotonic() + 30
    while True:  # the recorder writes in batches: wait for the whole load
        with sqlite3.connect(db) as c:
            rows = c.execute(
                "SELECT overhead_ms, start_us, start_us + latency_ms * 1000 FROM records "
                "WHERE start_us >= ? AND start_us < ? AND status = 'success'",
                (start_us, end_us),
            ).fetchall()
        if len(rows) >= expected or time.monotonic() > deadline:
            span_s = (max(r[2] for r in rows) - min(r[1] for r in rows)) / 1e6 if rows else float("nan")
            return sorted(r[0] for r in rows), len(rows) / span_s
        time.sleep(0.5)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--repeat", type=int, default=2, help="loads of each kind, alternating")
    p.add_argument("--server-core", default="0")
    p.add_argument("--nginx-core", default="1", help="nginx and the CLI's load generator")
    args = p.parse_args()
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="server-run-") as name:
        tmp = Path(name)
        nginx, upstream = start_nginx(tmp, args.nginx_core)
        server, port = start_server(tmp, upstream, args.server_core, key)
        print(
            f"modelmeter serve on core {args.server_core}; nginx and `modelmeter bench` on core {args.nginx_core}; "
            f"{args.requests} streamed requests at concurrency {args.concurrency} per load"
        )
        print("| driver | req/s | overhead p50 ms | overhead p99 ms | server CPU ms/request |")
        print("|---|---|---|---|---|")
        try:
            cli_load(port, key, argparse.Namespace(**{**vars(args), "requests": 200}), tmp)  # warm-up, not shown
            for i in range(args.repeat * 2):
                driver = "CLI (own process)" if i % 2 == 0 else "server-side run"
                cpu0, start_us = cpu_seconds(server.pid), time.time_ns() // 1000
                cli_load(port, key, args, tmp) if i % 2 == 0 else server_load(port, key, args)
                cpu = cpu_seconds(server.pid) - cpu0
                over, rps = recorded(tmp / "mm.db", start_us, time.time_ns() // 1000, args.requests)
                print(
                    f"| {driver} | {rps:,.0f} | {pct(over, 0.5):.3f} | {pct(over, 0.99):.3f} "
                    f"| {1000 * cpu / max(1, len(over)):.3f} |"
                )
        finally:
            server.terminate()
            nginx.terminate()
            server.wait(10)
            nginx.wait(10)


if __name__ == "__main__":
    main()
