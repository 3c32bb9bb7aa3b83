#!/usr/bin/env python3
"""Gateway overhead and throughput against a static nginx mock upstream, in one command.

    python benchmarks/overhead.py                      # ~6 minutes, 10 s per wrk run
    python benchmarks/overhead.py --duration 5 --quick # concurrency 1 and 64 only, fewer samples
    python benchmarks/overhead.py --litellm-venv /tmp/litellm-venv   # LiteLLM's proxy in the same run
    python benchmarks/overhead.py --quick --workers-only             # only the --workers 2 scaling
    python benchmarks/overhead.py --profile /tmp/prof  # also py-spy profiles of the gateway under load

What runs where (2 cores): the gateway (``modelmeter serve``, one worker, recording on to a temp
SQLite file) is started under ``taskset -c 0``; nginx (one worker, no master), wrk and the sequential
latency client share core 1. The ``--workers 2`` scaling runs unpin everything (cores 0,1).

Measured:
  * requests/s with wrk (1 thread, a Lua script POSTing the body) at concurrency 1, 8 and 64,
    non-streamed (JSON) and streamed (SSE: 7 content chunks, a usage chunk and [DONE]), directly
    against nginx and through the gateway; wrk's own latency percentiles;
  * the gateway's CPU time per request: utime+stime of its whole process tree (/proc/PID/stat),
    including the recorder (its process, or its threads with ``--recorder thread``), divided by the
    requests it served; "event loop" is the main threads of the gateway's processes only;
  * that every request was recorded: records in the SQLite file against the requests wrk completed
    (wrk closes its connections mid-request when the time is up: those few are recorded too, as
    client disconnects, so records = completed + at most the concurrency);
  * added latency at concurrency 1 with a sequential raw-socket client that alternates one request
    straight to nginx and one through the gateway (p50 and p99 of each, and their difference), time
    to first body byte for streamed calls, and the gateway's own ``overhead_ms`` p50 from its records
    of those same requests, to compare with the latency added as seen from outside;
  * ``--workers 2`` against one worker, unpinned, and how the 64 connections are split over the
    two workers mid-run (benchmarks/conn_split.py);
  * optionally LiteLLM's proxy (one worker, recording off) from a separate venv, the same figures;
  * Portkey's gateway (Node, stores nothing; benchmarks/portkey_gateway.py), the same figures, unless
    ``--no-portkey`` or node/npm are missing (then a note says it was skipped).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import conn_split

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "overhead"
CLK_TCK = os.sysconf("SC_CLK_TCK")

MODEL = "gpt-4o-mini"  # priced by genai-prices: the writer thread does its real work
WORDS = ["Hello", "!", " How", " can", " I", " help", " today?"]


# -- the mock upstream's bodies ---------------------------------------------------------------


def mock_bodies() -> tuple[str, str]:
    """The non-streamed JSON and the SSE stream nginx returns (no quote or ``$`` characters that
    nginx's string syntax would take for something else)."""
    created = 1735689600
    usage = {
        "prompt_tokens": 9,
        "completion_tokens": 7,
        "total_tokens": 16,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    whole = {
        "id": "chatcmpl-mock0001",
        "object": "chat.completion",
        "created": created,
        "model": MODEL,
        "system_fingerprint": "fp_mock",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(WORDS)},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    events = []
    for i, word in enumerate(WORDS):
        delta: dict[str, Any] = {"content": word}
        if i == 0:
            delta = {"role": "assistant", "content": word}
        events.append(
            {
                "id": "chatcmpl-mock0002",
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL,
                "system_fingerprint": "fp_mock",
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": "stop" if i == len(WORDS) - 1 else None,
                    }
                ],
            }
        )
    events.append(
        {
            "id": "chatcmpl-mock0002",
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
            "system_fingerprint": "fp_mock",
            "choices": [],
            "usage": usage,
        }
    )
    sse = "".join(f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events)
    sse += "data: [DONE]\n\n"
    return json.dumps(whole, separators=(",", ":")), sse


def _nginx_quote(text: str) -> str:
    assert "'" not in text and "$" not in text
    return text.replace("\\", "\\\\").replace("\n", "\\n")


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cores: str | None, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cores, *cmd] if cores else cmd


def wait_http(url: str, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s: {last}")


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants (uvicorn's --workers children, LiteLLM's workers)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children[ppid].append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total / CLK_TCK


def is_recorder(pid: int) -> bool:
    """A recorder process (modelmeter.recording.child): its CPU counts, its main thread is no event loop."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"modelmeter.recording.child" in f.read()
    except OSError:
        return False


def main_thread_seconds(pids: list[int]) -> float:
    """utime+stime of the main threads (the event loops) only: the rest is the recorder's threads
    (or recorder processes)."""
    total = 0
    for pid in pids:
        if is_recorder(pid):
            continue
        try:
            with open(f"/proc/{pid}/task/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def _runqueue_wait(pids: list[int]) -> float:
    """Seconds the event loops spent runnable but waiting for a CPU (/proc/PID/schedstat)."""
    total = 0
    for pid in pids:
        if is_recorder(pid):
            continue
        try:
            with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def core_busy() -> dict[str, float]:
    """Busy seconds of each core so far (/proc/stat: everything but idle and iowait)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                v = [int(x) for x in vals]
                out[name[3:]] = (sum(v[:8]) - v[3] - v[4]) / CLK_TCK
    return out


class Proc:
    """A child process with its output in a file, stopped with SIGINT then SIGKILL."""

    def __init__(
        self, name: str, cmd: list[str], logdir: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.name = name
        self.log = logdir / f"{name}.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            cmd, stdout=self._out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
        self.pid = self.popen.pid

    def pids(self) -> list[int]:
        return tree_pids(self.pid)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._out.close()

    def tail(self, n: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        return ""


# -- load generation ----------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    status_errors: int


def run_wrk(
    url: str,
    body_file: Path,
    conc: int,
    duration: float,
    cores: str | None,
    auth: str = "",
    headers: dict[str, str] | None = None,
) -> WrkResult:
    cmd = pinned(
        cores,
        [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(ASSETS / "post.lua"),
            url,
        ],
    )
    extra = "\n".join(f"{k}: {v}" for k, v in (headers or {}).items())
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_AUTH": auth, "BENCH_HEADERS": extra}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line.split(" ", 1)[1])
    return WrkResult(
        requests=r["requests"],
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        errors=r["connect"] + r["read"] + r["write"] + r["timeout"],
        status_errors=r["status"],
    )


class RawClient:
    """One keep-alive HTTP/1.1 connection, one request at a time, timed with perf_counter.

    Returns (time to the first body byte, time to the end of the response) of each request."""

    def __init__(
        self, port: int, path: str, body: bytes, auth: str = "", headers: dict[str, str] | None = None
    ) -> None:
        self.port = port
        extra = f"Authorization: Bearer {auth}\r\n" if auth else ""
        extra += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def one(self) -> tuple[float, float]:
        sock, clock = self.sock, time.perf_counter
        t0 = clock()
        sock.sendall(self.request)
        buf = b""
        head_end = -1
        length = -1
        chunked = False
        ttfb = 0.0
        while True:
            data = sock.recv(262144)
            if not data:
                raise ConnectionError(f"port {self.port} closed the connection")
            buf += data
            if head_end < 0:
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    continue
                head = buf[:head_end].lower()
                if not head.startswith(b"http/1.1 200"):
                    raise RuntimeError(f"unexpected answer: {buf[:300]!r}")
                chunked = b"transfer-encoding: chunked" in head
                if not chunked:
                    i = head.index(b"content-length:")
                    length = int(head[i + 15 : head.index(b"\r\n", i) if b"\r\n" in head[i:] else len(head)])
                head_end += 4
            if not ttfb and len(buf) > head_end:
                ttfb = clock() - t0
            if chunked:
                if buf.endswith(b"0\r\n\r\n") and (len(buf) - head_end == 5 or buf.endswith(b"\r\n0\r\n\r\n")):
                    break
            elif len(buf) - head_end >= length:
                break
        return ttfb, clock() - t0

    def close(self) -> None:
        self.sock.close()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# -- the records ---------------------------------------------------------------------------------


class Records:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _q(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
            try:
                return conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:  # a --serve-cmd that does not record
                if "no such table" not in str(exc):
                    raise
                return [(0,)] if sql.startswith("SELECT count(*) FROM records") else []

    def count(self) -> int:
        return int(self._q("SELECT count(*) FROM records")[0][0])

    def drain(self, timeout: float = 60.0) -> int:
        """Wait until the writer has stored everything (the count stops moving)."""
        last, stable, deadline = -1, 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = self.count()
            stable = stable + 1 if n == last else 0
            if stable >= 4:
                return n
            last = n
            time.sleep(0.1)
        return last

    def since(self, t0: float) -> dict[str, int]:
        rows = self._q(
            "SELECT status || ' ' || http_status, count(*) FROM records WHERE start_us >= ? GROUP BY 1", int(t0 * 1e6)
        )
        return {k: int(v) for k, v in rows}

    def overhead(self, t0: float, t1: float, deployment: str) -> list[float]:
        return [
            r[0]
            for r in self._q(
                "SELECT overhead_ms FROM records WHERE start_us BETWEEN ? AND ? AND deployment = ? "
                "AND status = 'success'",
                int(t0 * 1e6),
                int(t1 * 1e6),
                deployment,
            )
        ]


# -- targets -------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    port: int
    paths: dict[str, str]  # mode -> URL path
    proc: Proc | None = None
    records: Records | None = None
    cores: str = ""
    auth: str = ""  # a bearer token the target wants (LiteLLM's master key)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # mode -> more headers (Portkey's)

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}{self.paths[mode]}"


@dataclass
class Row:
    target: str
    mode: str
    conc: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float | None = None
    loop_ms: float | None = None  # of which the main thread (event loop)
    records: str = ""
    errors: int = 0
    foreign: float | None = None  # share of the gateway's core used by other processes


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    gw_core: str
    load_core: str
    bodies: dict[str, Path] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    latency: list[dict[str, Any]] = field(default_factory=list)
    scaling: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def log(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    # one wrk run against a target, with CPU accounting and the record check
    def measure(
        self, target: Target, mode: str, conc: int, *, label: str | None = None, wrk_cores: str | None = None
    ) -> Row:
        cores = wrk_cores if wrk_cores is not None else self.load_core
        url = target.url(mode)
        if target.proc is not None:  # warm up: connections, caches, the pricing lookup
            run_wrk(url, self.bodies[mode], conc, 1, cores, target.auth, target.headers.get(mode))
            if target.records:
                target.records.drain()
            else:
                time.sleep(0.3)
        pids = target.proc.pids() if target.proc else []
        t0 = time.time()
        cpu0 = cpu_seconds(pids)
        loop0 = main_thread_seconds(pids)
        busy0 = core_busy()
        r = run_wrk(url, self.bodies[mode], conc, self.args.duration, cores, target.auth, target.headers.get(mode))
        busy1, cpu_run, wall = core_busy(), cpu_seconds(pids) - cpu0, time.time() - t0
        foreign = None
        if target.cores and "," not in target.cores and target.cores in busy1 and wall > 0:
            # what else ran on the gateway's core (other processes on this machine)
            foreign = max(busy1[target.cores] - busy0[target.cores] - cpu_run, 0.0) / wall
        recs = ""
        if target.records:
            target.records.drain()
            stored = target.records.since(t0)
            n = sum(stored.values())
            ok = stored.get("success 200", 0)
            cut = n - r.requests
            verdict = "ok" if 0 <= cut <= conc else "MISMATCH"
            recs = f"{n}/{r.requests} {verdict}" + (f" (+{cut} cut at stop)" if cut else "")
            if n - ok > max(cut, 0):
                recs += f" [{n - ok} not success: {stored}]"
        else:
            time.sleep(0.3)
        cpu = cpu_seconds(pids) - cpu0 if pids else None
        loop = main_thread_seconds(pids) - loop0 if pids else None

        def per(x: float | None) -> float | None:
            return x * 1000 / r.requests if x is not None and r.requests else None

        row = Row(
            label or target.name,
            mode,
            conc,
            r.rps,
            r.p50_ms,
            r.p99_ms,
            per(cpu),
            per(loop),
            recs,
            r.errors + r.status_errors,
            foreign,
        )
        self.log(
            f"{row.target:<28} {mode:<4} c={conc:<3} {r.rps:9.0f} req/s  p50 {r.p50_ms:.3f} ms"
            f"  p99 {r.p99_ms:.3f} ms  cpu/req "
            f"{'-' if row.cpu_ms is None else f'{row.cpu_ms:.3f} ms'}"
            f"{'' if row.loop_ms is None else f' (loop {row.loop_ms:.3f})'}  {recs}"
            f"{'' if foreign is None else f'  other load on core {target.cores}: {foreign:.0%}'}"
            f"{f'  ERRORS {row.errors}' if row.errors else ''}"
        )
        return row

    # sequential, alternating direct/through: added latency, TTFB, overhead_ms from the records
    def latency_run(self, direct: Target, target: Target, mode: str, n: int, deployment: str | None) -> dict[str, Any]:
        body = self.bodies[mode].read_bytes()
        a = RawClient(direct.port, direct.paths[mode], body)
        b = RawClient(target.port, target.paths[mode], body, target.auth, target.headers.get(mode))
        for _ in range(min(200, n)):
            a.one()
            b.one()
        if target.records:
            target.records.drain()
        da: list[tuple[float, float]] = []
        db: list[tuple[float, float]] = []
        gc.disable()
        t0 = time.time()
        pids = target.proc.pids() if target.proc else []
        cpu0, busy0 = cpu_seconds(pids), core_busy()
        rq0 = _runqueue_wait(pids)
        try:
            for i in range(n):
                if i % 2:
                    da.append(a.one())
                    db.append(b.one())
                else:
                    db.append(b.one())
                    da.append(a.one())
        finally:
            t1 = time.time()
            gc.enable()
            a.close()
            b.close()
        res: dict[str, Any] = {"target": target.name, "mode": mode, "n": n}
        res["runqueue_us"] = (_runqueue_wait(pids) - rq0) * 1e6 / max(n, 1)
        if target.cores and "," not in target.cores:  # what else ran on the gateway's core meanwhile
            busy1 = core_busy()
            res["foreign"] = max(busy1[target.cores] - busy0[target.cores] - (cpu_seconds(pids) - cpu0), 0.0) / max(
                t1 - t0, 1e-9
            )
        for key, idx in (("ttfb", 0), ("total", 1)):
            x = [v[idx] * 1000 for v in da]
            y = [v[idx] * 1000 for v in db]
            res[f"direct_{key}_p50"], res[f"direct_{key}_p99"] = pct(x, 50), pct(x, 99)
            res[f"via_{key}_p50"], res[f"via_{key}_p99"] = pct(y, 50), pct(y, 99)
            res[f"added_{key}_p50"] = pct(y, 50) - pct(x, 50)
            res[f"added_{key}_p99"] = pct(y, 99) - pct(x, 99)
            # the same, paired request by request (direct and through alternate)
            res[f"added_{key}_paired_p50"] = statistics.median([q - p for p, q in zip(x, y, strict=False)])
        if target.records and deployment:
            target.records.drain()
            ov = target.records.overhead(t0, t1, deployment)
            res["overhead_ms_p50"] = pct(ov, 50) if ov else None
            res["overhead_ms_p99"] = pct(ov, 99) if ov else None
            res["records"] = len(ov)
        self.log(
            f"latency {target.name} {mode}: added p50 {res['added_total_p50']:.3f} ms "
            f"p99 {res['added_total_p99']:.3f} ms, ttfb added {res['added_ttfb_p50']:.3f} ms"
            + (
                f", overhead_ms p50 {res['overhead_ms_p50']:.3f} p99 {res['overhead_ms_p99']:.3f}"
                if res.get("overhead_ms_p50") is not None
                else ""
            )
            + (f"; other load on core {target.cores}: {res['foreign']:.0%}" if "foreign" in res else "")
            + f"; event loop waited for the CPU {res['runqueue_us']:.1f} µs/request"
        )
        return res

    def profile(self, target: Target, mode: str, conc: int, name: str) -> None:
        """py-spy (sampling, non-blocking) over one wrk run; keeps the collapsed stacks."""
        assert target.proc is not None
        outdir = Path(self.args.profile)
        outdir.mkdir(parents=True, exist_ok=True)
        raw = outdir / f"{name}.txt"
        dur = max(3, round(self.args.duration))
        spy = subprocess.Popen(
            pinned(
                self.load_core,
                [
                    "py-spy",
                    "record",
                    "--nonblocking",
                    "--threads",
                    "--subprocesses",  # the recorder process too
                    "-r",
                    "200",
                    "-d",
                    str(dur + 1),
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                    "-p",
                    str(target.proc.pid),
                ],
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        run_wrk(target.url(mode), self.bodies[mode], conc, dur, self.load_core)
        spy.wait(60)
        self.profiles[name] = summarize_profile(raw)
        self.log(f"profile {name}: {raw}")


_LAYERS = (
    ("aiohttp/", "aiohttp"),
    ("modelmeter/upstreams", "upstream client (LeanHTTP)"),
    ("modelmeter/metering", "metering (usage, SSE accounting)"),
    ("modelmeter/sse", "SSE parser"),
    ("modelmeter/gateway", "gateway handler"),
    ("modelmeter/recording", "recorder.submit"),
    ("uvicorn/", "uvicorn"),
    ("httptools", "uvicorn"),
    ("asyncio/", "event loop (uvloop, syscalls)"),
)


def _layer(frames: list[str]) -> str:
    """Which part of the process a sample belongs to: recorder threads by their entry point,
    the event loop's thread by its innermost frame we can name."""
    names = " ".join(frames[:8])
    if "Recorder._run" in names:
        return "recorder: finisher thread (pricing, rows)"
    if "Recorder._store_loop" in names:
        return "recorder: writer thread (SQLite, rollups, listeners)"
    for frame in reversed(frames):
        for key, name in _LAYERS:
            if key in frame:
                return f"event loop: {name}"
    return "other"


def summarize_profile(raw: Path, top: int = 20) -> list[str]:
    """Shares per layer, and self and inclusive shares per function, from py-spy's collapsed
    stacks. (Samples of threads waiting on a lock can be counted as active: py-spy in
    non-blocking mode cannot always tell; the per-thread CPU in the table is exact.)"""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    layers: collections.Counter[str] = collections.Counter()
    total = 0
    if not raw.exists():
        return ["(no profile written)"]
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        layers[_layer(frames)] += n
        for f in set(frames):
            incl[f] += n
    out = [f"{total} samples; by layer:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in layers.most_common()]
    out.append("self time:")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out.append("inclusive:")
    out += [
        f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top) if not f.startswith(("process ", "thread "))
    ][:top]
    return out


# -- starting the servers ------------------------------------------------------------------------


def start_nginx(b: Bench) -> Target:
    port = free_port()
    prefix = b.tmp / "nginx"
    prefix.mkdir()
    json_body, sse_body = mock_bodies()
    conf = string.Template((ASSETS / "nginx.conf.template").read_text()).substitute(
        prefix=prefix, port=port, json_body=_nginx_quote(json_body), sse_body=_nginx_quote(sse_body)
    )
    (prefix / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = Proc(
        "nginx",
        pinned(
            b.load_core,
            [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "nginx-error.log")],
        ),
        b.tmp,
    )
    t = Target("nginx (direct)", port, {"json": "/json/v1/chat/completions", "sse": "/sse/v1/chat/completions"}, proc)
    deadline = time.monotonic() + 10
    while True:
        try:
            RawClient(port, t.paths["json"], b"{}").one()
            break
        except OSError:
            if time.monotonic() > deadline or proc.popen.poll() is not None:
                raise RuntimeError(f"nginx did not start:\n{proc.tail()}") from None
            time.sleep(0.05)
    return t


def _deployment(name: str, api_base: str, upstreams: int) -> str:
    """One deployment; with ``upstreams`` > 1, that many upstreams (routing/) on the same mock, equal
    weights: what routing adds to a call, measured against one upstream."""
    head = f'[[deployments]]\nname = "{name}"\nmodel = "{MODEL}"\n'
    if upstreams <= 1:
        return head + f'api_base = "{api_base}"\n'
    return head + "".join(
        f'\n[[deployments.upstreams]]\nname = "u{i}"\napi_base = "{api_base}"\n' for i in range(upstreams)
    )


def start_modelmeter(b: Bench, upstream_port: int, workers: int, cores: str | None, name: str) -> Target:
    port = free_port()
    db = b.tmp / f"{name}.db"
    cfg = b.tmp / f"{name}.toml"
    cfg.write_text(f"""[server]
host = "127.0.0.1"
port = {port}
database = "sqlite:///{db}"

{_deployment("mock-json", f"http://127.0.0.1:{upstream_port}/json/v1", b.args.upstreams)}
{_deployment("mock-sse", f"http://127.0.0.1:{upstream_port}/sse/v1", b.args.upstreams)}
""")
    serve = (
        shlex.split(b.args.serve_cmd) if b.args.serve_cmd else [sys.executable, "-m", "modelmeter.cli.main", "serve"]
    )
    # info with several workers: their "Application startup complete." lines tell when all serve
    level = "info" if workers > 1 else "warning"
    cmd = [*serve, "--config", str(cfg), "--log-level", level, "--workers", str(workers)]
    proc = Proc(name, pinned(cores, cmd), b.tmp)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", 60, proc.popen)
    except RuntimeError:
        print(proc.tail(), file=sys.stderr)
        raise
    if workers > 1:  # every worker must be serving, not just the first one to accept (wrk's
        # connections stay open for the whole run: a worker that starts late would get none)
        deadline = time.monotonic() + 120
        while proc.log.read_bytes().count(b"Application startup complete.") < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: not all {workers} workers started:\n{proc.tail()}")
            time.sleep(0.2)
        time.sleep(0.5)
    b.log(
        f"started modelmeter {name}: pid {proc.pid}, {workers} worker(s), cores {cores or 'any'}, port {port}, db {db}"
    )
    return Target(
        name, port, {"json": "/v1/chat/completions", "sse": "/v1/chat/completions"}, proc, Records(db), cores or "0,1"
    )


def start_litellm(b: Bench, upstream_port: int, venv: Path) -> Target:
    port = free_port()
    cfg = b.tmp / "litellm.yaml"
    cfg.write_text(f"""model_list:
  - model_name: mock-json
    litellm_params:
      model: openai/{MODEL}
      api_base: http://127.0.0.1:{upstream_port}/json/v1
      api_key: sk-mock
  - model_name: mock-sse
    litellm_params:
      model: openai/{MODEL}
      api_base: http://127.0.0.1:{upstream_port}/sse/v1
      api_key: sk-mock
litellm_settings:
  telemetry: false
  set_verbose: false
  json_logs: false
general_settings: {{}}
""")
    key = "sk-bench-" + os.urandom(16).hex()  # it refuses to start without a master key
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "true",
        "LITELLM_MASTER_KEY": key,
    }
    env.pop("DATABASE_URL", None)
    cmd = [
        str(venv / "bin" / "litellm"),
        "--config",
        str(cfg),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    proc = Proc("litellm", pinned(b.gw_core, cmd), b.tmp, env=env, cwd=b.tmp)
    try:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", 180, proc.popen)
    except RuntimeError:
        print(proc.tail(), file=sys.stderr)
        raise
    b.log(f"started LiteLLM proxy: pid {proc.pid}, core {b.gw_core}, port {port}")
    return Target(
        "LiteLLM proxy",
        port,
        {"json": "/v1/chat/completions", "sse": "/v1/chat/completions"},
        proc,
        None,
        b.gw_core,
        key,
    )


def start_portkey(b: Bench, upstream_port: int) -> Target | str:
    """Portkey's gateway (Node, one process) on the gateway's core; or why it was skipped."""
    import portkey_gateway

    port = free_port()
    cmd = portkey_gateway.command(port)
    if isinstance(cmd, str):
        return cmd
    proc = Proc("portkey", pinned(b.gw_core, cmd), b.tmp, cwd=b.tmp)
    try:
        wait_http(f"http://127.0.0.1:{port}/", 60, proc.popen)
    except RuntimeError:
        proc.stop()
        return f"Portkey's gateway did not start:\n{proc.tail()}"
    b.log(f"started Portkey's gateway: pid {proc.pid}, core {b.gw_core}, port {port}")
    base = f"http://127.0.0.1:{upstream_port}"
    return Target(
        "Portkey gateway",
        port,
        {"json": "/v1/chat/completions", "sse": "/v1/chat/completions"},
        proc,
        None,
        b.gw_core,
        headers={m: portkey_gateway.headers(f"{base}/{m}/v1") for m in ("json", "sse")},
    )


def portkey_answers(b: Bench, pk: Target, mode: str) -> bool:
    """One call in ``mode``; False (and a note) if Portkey does not answer it with a 200. (1.15.2
    on Node 20 answers every stream with a 500: "TypeError: immutable" appending its headers.)"""
    client = RawClient(pk.port, pk.paths[mode], b.bodies[mode].read_bytes(), pk.auth, pk.headers.get(mode))
    try:
        client.one()
        return True
    except (RuntimeError, OSError) as exc:
        note = f"Portkey's gateway skipped for {mode}: {str(exc)[:200]}"
        b.log(note)
        b.notes.append(note)
        return False
    finally:
        client.close()


# -- the report ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("uvicorn", "uvloop", "httptools", "aiohttp", "orjson"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[pkg] = version(pkg)
    nginx = (
        subprocess.run([shutil.which("nginx") or "/usr/sbin/nginx", "-v"], capture_output=True, text=True)
        .stderr.strip()
        .replace("nginx version: ", "")
    )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": nginx,
        "libs": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def fmt(x: float | None, spec: str = ".3f") -> str:
    return "–" if x is None else format(x, spec)


def report(b: Bench, command: str, started: dt.datetime) -> str:
    m = machine()
    out = [
        f"Run {started:%Y-%m-%d %H:%M} UTC: `{command}`",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}, "
        f"{m['nginx']}, {m['libs']}.",
        "",
        f"Cores: gateway (and LiteLLM) on core {b.gw_core}; nginx (1 worker), wrk (1 thread) and "
        f"the latency client on core {b.load_core}; in the `--workers` runs nginx and wrk are unpinned "
        f"(cores 0,1) and `modelmeter serve --workers 2` pins one worker per core itself. "
        f"{b.args.duration:g} s per wrk run.",
        "",
    ]
    out += [
        "### Throughput (wrk, 1 thread)",
        "",
        "| target | mode | conc. | req/s | wrk p50 ms | wrk p99 ms | CPU ms/req "
        "| of which event loop | records / completed | other load on its core |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in b.rows:
        out.append(
            f"| {r.target} | {r.mode} | {r.conc} | {r.rps:,.0f} | {r.p50_ms:.3f} | "
            f"{r.p99_ms:.3f} | {fmt(r.cpu_ms)} | {fmt(r.loop_ms)} | {r.records or '–'}"
            f"{f' ({r.errors} errors)' if r.errors else ''} | "
            f"{'–' if r.foreign is None else f'{r.foreign:.0%}'} |"
        )
    out += [
        "",
        "### Added latency at concurrency 1 (sequential client, alternating direct/through)",
        "",
        "| target | mode | n | direct p50 / p99 ms | through p50 / p99 ms | added p50 ms "
        "| added p99 ms | TTFB added p50 ms | overhead_ms p50 / p99 (records) "
        "| overhead_ms − added (p50) | other load on its core | its loop waiting for a CPU µs/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lt in b.latency:
        ov = lt.get("overhead_ms_p50")
        out.append(
            f"| {lt['target']} | {lt['mode']} | {lt['n']} | {lt['direct_total_p50']:.3f} / "
            f"{lt['direct_total_p99']:.3f} | {lt['via_total_p50']:.3f} / {lt['via_total_p99']:.3f} | "
            f"{lt['added_total_p50']:.3f} | {lt['added_total_p99']:.3f} | "
            f"{lt['added_ttfb_p50']:.3f} | {fmt(ov)} / {fmt(lt.get('overhead_ms_p99'))} | "
            f"{fmt(None if ov is None else ov - lt['added_total_p50'], '+.3f')} | "
            f"{fmt(lt.get('foreign'), '.0%')} | {fmt(lt.get('runqueue_us'), '.0f')} |"
        )
    if b.scaling:
        out += [
            "",
            "### `--workers 2` scaling (wrk concurrency 64; nginx and wrk unpinned on cores 0,1)",
            "",
            "| mode | 1 worker pinned (core 0) req/s | 1 worker unpinned req/s "
            "| 2 workers req/s | 2 workers ÷ 1 pinned | 2 workers ÷ 1 unpinned | connections per worker |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for s in b.scaling:
            out.append(
                f"| {s['mode']} | {s['pinned']:,.0f} | {s['one']:,.0f} | {s['two']:,.0f} | "
                f"{s['two'] / s['pinned']:.2f}× | {s['two'] / s['one']:.2f}× | {s['split']} |"
            )
    for other, title in (("LiteLLM", "LiteLLM proxy"), ("Portkey", "Portkey's gateway (Node; stores nothing)")):
        comp = _comparison(b, other)
        if comp:
            out += ["", f"### modelmeter vs {title} (same run, same upstream, same core)", "", *comp]
    if b.notes:
        out += ["", *[f"- {n}" for n in b.notes]]
    if b.profiles:
        out += ["", "### Profiles (py-spy, non-blocking, 200 Hz, all threads)", ""]
        for name, lines in b.profiles.items():
            out += [f"`{name}`:", "", "```", *lines, "```", ""]
    return "\n".join(out)


def _comparison(b: Bench, other: str = "LiteLLM") -> list[str]:
    mm = {(r.mode, r.conc): r for r in b.rows if r.target.startswith("modelmeter (core")}
    ll = {(r.mode, r.conc): r for r in b.rows if r.target.startswith(other)}
    keys = sorted(set(mm) & set(ll))
    if not keys:
        return []
    out = [
        f"| mode | conc. | modelmeter req/s | {other} req/s | ratio | modelmeter CPU ms/req | {other} CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k in keys:
        a, c = mm[k], ll[k]
        out.append(
            f"| {k[0]} | {k[1]} | {a.rps:,.0f} | {c.rps:,.0f} | {f'{a.rps / c.rps:.1f}×' if c.rps else '–'} | "
            f"{fmt(a.cpu_ms)} | {fmt(c.cpu_ms)} |"
        )
    return out


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=None, help="seconds per wrk run (10; 5 quick)")
    p.add_argument(
        "--quick", action="store_true", help="concurrency 1 and 64 only, fewer latency samples, no LiteLLM c=8"
    )
    p.add_argument("--concurrency", default=None, help="comma-separated (default 1,8,64)")
    p.add_argument(
        "--latency-requests",
        type=int,
        default=None,
        help="sequential requests per mode for added latency (default 4000; 1500 quick)",
    )
    p.add_argument("--modes", default="json,sse", help="json, sse or both")
    p.add_argument("--no-direct", action="store_true", help="skip the wrk runs straight to nginx")
    p.add_argument("--no-workers", action="store_true", help="skip the --workers 2 scaling runs")
    p.add_argument(
        "--workers-only", action="store_true", help="only the --workers 2 scaling runs (and no LiteLLM or Portkey)"
    )
    p.add_argument("--litellm-venv", type=Path, help="a venv with litellm[proxy] installed")
    p.add_argument(
        "--no-portkey",
        dest="portkey",
        action="store_false",
        help="skip Portkey's gateway (npm ci in benchmarks/portkey on first use; skipped without node)",
    )
    p.add_argument("--profile", metavar="DIR", help="also record py-spy profiles under load")
    p.add_argument("--gateway-core", default="0")
    p.add_argument("--load-core", default="1")
    p.add_argument(
        "--serve-cmd",
        help="run this instead of `python -m modelmeter.cli.main serve` "
        "(it gets --config, --log-level and --workers): to compare builds or servers",
    )
    p.add_argument("--markdown", type=Path, help="also write the results (markdown) to this file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs, dbs)")
    p.add_argument("--upstreams", type=int, default=1, help="upstreams per deployment (routing; all on the same mock)")
    args = p.parse_args()
    args.duration = args.duration or (5.0 if args.quick else 10.0)
    concs = [int(c) for c in (args.concurrency or ("1,64" if args.quick else "1,8,64")).split(",")]
    n_lat = args.latency_requests or (1500 if args.quick else 4000)
    modes = [m for m in args.modes.split(",") if m]
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install -y nginx wrk util-linux")
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        sys.exit("nginx is missing: apt-get install -y nginx")
    if os.cpu_count() == 1:
        gw_core = load_core = "0"
    else:
        gw_core, load_core = args.gateway_core, args.load_core
    # The latency client runs in this process: keep it (and anything it starts) off the gateway's core.
    os.sched_setaffinity(0, {int(c) for c in load_core.split(",")})
    started = dt.datetime.now(dt.UTC)
    command = "python benchmarks/overhead.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    tmp = Path(tempfile.mkdtemp(prefix="mm-overhead-"))
    b = Bench(args, tmp, gw_core, load_core)
    procs: list[Proc] = []
    try:
        json_req = {"model": "mock-json", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hello"}]}
        sse_req = {**json_req, "model": "mock-sse", "stream": True}
        for mode, body in (("json", json_req), ("sse", sse_req)):
            b.bodies[mode] = tmp / f"{mode}.body"
            b.bodies[mode].write_bytes(json.dumps(body).encode())
        nginx = start_nginx(b)
        assert nginx.proc is not None
        procs.append(nginx.proc)
        b.log(f"nginx pid {nginx.proc.pid} on core {load_core}, port {nginx.port}; temp dir {tmp}")
        if not args.no_direct and not args.workers_only:
            for mode in modes:
                for c in concs:
                    b.rows.append(b.measure(nginx, mode, c))
        if not args.workers_only:
            gw = start_modelmeter(b, nginx.port, 1, gw_core, "modelmeter")
            assert gw.proc is not None
            procs.append(gw.proc)
            gw.name = f"modelmeter (core {gw_core})"
            for mode in modes:
                for c in concs:
                    b.rows.append(b.measure(gw, mode, c))
            for mode in modes:
                b.latency.append(b.latency_run(nginx, gw, mode, n_lat, f"mock-{mode}"))
            if args.profile:
                for mode in modes:
                    b.profile(gw, mode, 64, f"modelmeter-{mode}-c64")
                b.profile(gw, "json", 1, "modelmeter-json-c1")
            gw.proc.stop()
            procs.remove(gw.proc)

        if args.litellm_venv and not args.workers_only:
            try:
                ll = start_litellm(b, nginx.port, args.litellm_venv)
            except RuntimeError as exc:
                b.notes.append(f"LiteLLM's proxy did not start: {str(exc)[:300]}")
                ll = None
            if ll is not None:
                assert ll.proc is not None
                procs.append(ll.proc)
                for mode in modes:
                    for c in concs:
                        b.rows.append(b.measure(ll, mode, c))
                for mode in modes:
                    b.latency.append(b.latency_run(nginx, ll, mode, max(300, n_lat // 10), None))
                ll.proc.stop()
                procs.remove(ll.proc)

        if args.portkey and not args.workers_only:
            pk = start_portkey(b, nginx.port)
            if isinstance(pk, str):
                b.log(pk)
                b.notes.append(pk)
            else:
                assert pk.proc is not None
                procs.append(pk.proc)
                pk_modes = [m for m in modes if portkey_answers(b, pk, m)]
                for mode in pk_modes:
                    for c in concs:
                        b.rows.append(b.measure(pk, mode, c))
                for mode in pk_modes:
                    b.latency.append(b.latency_run(nginx, pk, mode, max(300, n_lat // 4), None))
                pk.proc.stop()
                procs.remove(pk.proc)

        if not args.no_workers and (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(nginx.proc.pid, {0, 1})
            os.sched_setaffinity(0, {0, 1})
            pinned_rps = {r.mode: r.rps for r in b.rows if r.target.startswith("modelmeter (core") and r.conc == 64}
            found: dict[str, dict[str, float]] = collections.defaultdict(dict)
            splits: dict[str, list[int]] = {}
            for workers in (1, 2):
                t = start_modelmeter(b, nginx.port, workers, "0,1", f"modelmeter-w{workers}")
                assert t.proc is not None
                procs.append(t.proc)
                t.name = f"modelmeter --workers {workers} (0,1)"
                for mode in modes:
                    # the connections' split over the workers, mid-run (after wrk's 1 s warm-up)
                    timer, split = conn_split.sample_later(1.5 + args.duration / 2, t.port, t.proc.pids())
                    row = b.measure(t, mode, 64, wrk_cores="0,1")
                    timer.join()
                    b.rows.append(row)
                    found[mode][f"w{workers}"] = row.rps
                    if workers == 2 and split:
                        splits[mode] = split[0]
                t.proc.stop()
                procs.remove(t.proc)
            for mode in modes:
                b.scaling.append(
                    {
                        "mode": mode,
                        "pinned": pinned_rps.get(mode, float("nan")),
                        "one": found[mode]["w1"],
                        "two": found[mode]["w2"],
                        "split": "/".join(map(str, splits.get(mode, []))) or "–",
                    }
                )
    finally:
        for proc in reversed(procs):
            proc.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    text = report(b, command, started)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
