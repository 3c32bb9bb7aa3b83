#!/usr/bin/env python3
"""Added latency at a steady open-loop request rate (issue #17: added p99 ≤ 2 ms at 2,000 req/s).

    PYTHONPATH=$PWD/src python benchmarks/openloop.py          # 500, 1000, 2000 req/s, 10 s each, JSON
    PYTHONPATH=$PWD/src python benchmarks/openloop.py --rates 500,2000 --duration 5 --modes json,sse
    python benchmarks/openloop.py --serve-cmd "/other/venv/bin/modelmeter serve"   # another build

The rig of benchmarks/overhead.py (imported): nginx as the static mock upstream (JSON; SSE, 7 chunks) and
this client on the load core (1); the gateway recording to a temp SQLite file under ``taskset -c 0``, as
``modelmeter serve`` (the recorder in a process of its own) and ``modelmeter serve --recorder thread``
(its threads in the gateway's process); nginx directly too, each at every rate and mode.

Open loop: request k is due at t0 + k/R whatever became of the others (a periodic timerfd: the event
loop's timers step by milliseconds). It goes out on an idle keep-alive HTTP/1.1 connection; if all are
busy a new one is opened (up to --max-conns) and it waits for the first free one. Its latency runs from
when it was due to its answer's last byte, so a stall counts for every request due during it (no
coordinated omission, unlike wrk's closed loop). How late the client itself was is reported, with a
warning when it fell behind (the tail is then partly the client's).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import datetime as dt
import gc
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead
from overhead import Bench, Proc, Target, pct

ADDED_NOTE = (
    "added = the percentile through the gateway − the same percentile straight to nginx (same rate and "
    "mode); percentiles are not additive, so this is the usual approximation, not the percentile of "
    "each call's own added time."
)
PCTS = (50.0, 90.0, 99.0, 99.9)
IDLE_MAX = 2.0  # s: an idle connection older than this is closed, not reused (uvicorn closes them at 5 s)
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)")


# -- a periodic timerfd (CLOCK_MONOTONIC, the clock of time.monotonic) ---------------------------


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


def periodic_timer(first_ns: int, interval_ns: int) -> int:
    """A non-blocking timerfd that fires at ``first_ns`` (time.monotonic_ns) and every ``interval_ns``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.timerfd_create(1, os.O_NONBLOCK | os.O_CLOEXEC)  # CLOCK_MONOTONIC; TFD_* = O_*
    if fd < 0:
        raise OSError(ctypes.get_errno(), "timerfd_create")
    spec = _Itimerspec(_Timespec(0, interval_ns), _Timespec(*divmod(first_ns, 1_000_000_000)))
    if libc.timerfd_settime(fd, 1, ctypes.byref(spec), None) < 0:  # TFD_TIMER_ABSTIME
        os.close(fd)
        raise OSError(ctypes.get_errno(), "timerfd_settime")
    return fd


# -- the client: a pool of raw keep-alive connections --------------------------------------------


class Conn(asyncio.Protocol):
    """One keep-alive connection, one request at a time; parses just enough to see where an answer ends."""

    def __init__(self, pool: Pool) -> None:
        self.pool, self.busy, self.due, self.sent, self.status, self.buf = pool, False, 0.0, 0.0, 0, bytearray()
        self.idle_since = 0.0
        self.transport: asyncio.Transport  # set once connected
        self.body_at = self.length = self.pos = -1  # body's start; Content-Length (-1: chunked); next chunk

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.pool.conns.add(self)
        self.pool.release(self)

    def send(self, due: float) -> None:
        self.busy, self.due, self.body_at, self.pos = True, due, -1, 0
        self.buf.clear()
        self.transport.write(self.pool.request)
        self.sent = time.monotonic()
        self.pool.stats.late.append(self.sent - due)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buf += data
        try:
            done = self.busy and self._complete()
        except ValueError as exc:  # not HTTP/1.1 as expected: drop the connection
            self.pool.errors[f"bad answer: {exc}"[:80]] += 1
            self.busy = False
            self.pool.settle(None)
            self.transport.close()
            return
        if done:
            self.busy = False
            self.pool.answered(self, now)

    def _complete(self) -> bool:
        buf = self.buf
        if self.body_at < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(buf[: end + 2]).lower()
            if not head.startswith(b"http/1.1 "):
                raise ValueError(repr(head[:40]))
            self.status = int(head[9:12])
            self.body_at = self.pos = end + 4
            m = _LENGTH.search(head)
            if m:
                self.length = int(m[1])
            elif b"\r\ntransfer-encoding: chunked" in head:
                self.length = -1
            else:
                raise ValueError("neither Content-Length nor chunked")
        if self.length >= 0:
            return len(buf) - self.body_at >= self.length
        while True:  # chunked: size line, data, CRLF; the last chunk is empty (no trailers expected)
            eol = buf.find(b"\r\n", self.pos)
            if eol < 0:
                return False
            size = int(bytes(buf[self.pos : eol]).split(b";")[0], 16)
            if len(buf) < eol + size + 4:
                return False
            self.pos = eol + size + 4
            if size == 0:
                return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.lost(self)


@dataclass
class Stats:
    due0: float = 0.0  # when the first request was due
    latency: list[float] = field(default_factory=list)  # s, from the due time, 200s only
    service: list[float] = field(default_factory=list)  # s, from the actual send (what a closed loop sees)
    late: list[float] = field(default_factory=list)  # s, actual send − due (incl. waiting for a connection)
    lag: list[float] = field(default_factory=list)  # s, the timer's callback − due: the client's own delay
    last_answer: float = 0.0
    waited: int = 0  # requests that found no idle connection


class Pool:
    def __init__(self, port: int, request: bytes, max_conns: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.port, self.request, self.max_conns = port, request, max_conns
        self.conns: set[Conn] = set()
        self.idle: list[Conn] = []  # a stack: the hottest connections are reused, the others idle out
        self.opening = 0
        self.queue: collections.deque[float] = collections.deque()  # due times waiting for a connection
        self.outstanding = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.stats = Stats()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.all_due = False

    async def open(self) -> None:
        try:
            await self.loop.create_connection(lambda: Conn(self), "127.0.0.1", self.port)
        except OSError as exc:
            self.errors[f"connect: {exc.strerror}"] += 1
            if not self.conns and self.queue:  # nothing will ever take them
                self.errors["no connection"] += len(self.queue)
                while self.queue:
                    self.queue.popleft()
                    self.settle(None)
        finally:
            self.opening -= 1

    def dispatch(self, due: float) -> None:
        self.outstanding += 1
        now = time.monotonic()
        self.stats.lag.append(now - due)
        while self.idle:  # the most recently used first; one the server may be closing is dropped
            conn = self.idle.pop()
            if conn.idle_since > now - IDLE_MAX:
                conn.send(due)
                return
            conn.transport.close()
        self.stats.waited += 1
        self.queue.append(due)
        if len(self.conns) + self.opening < self.max_conns:
            self.opening += 1
            self.loop.create_task(self.open())

    def release(self, conn: Conn) -> None:
        if self.queue:
            conn.send(self.queue.popleft())
        else:
            conn.idle_since = time.monotonic()
            self.idle.append(conn)

    def answered(self, conn: Conn, now: float) -> None:
        if conn.status == 200:
            s = self.stats
            s.latency.append(now - conn.due)
            s.service.append(now - conn.sent)
            s.last_answer = now
        else:
            self.errors[f"HTTP {conn.status}"] += 1
        self.settle(conn)

    def settle(self, conn: Conn | None) -> None:
        """One request is over (answered or failed); its connection, if still good, takes the next."""
        self.outstanding -= 1
        if conn is not None:
            self.release(conn)
        if self.all_due and self.outstanding == 0 and not self.done.done():
            self.done.set_result(None)

    def lost(self, conn: Conn) -> None:
        self.conns.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.busy:
            conn.busy = False
            self.errors["connection closed mid-answer"] += 1
            self.settle(None)
        if self.queue and not self.conns and not self.opening:
            self.opening += 1
            self.loop.create_task(self.open())

    async def run(self, rate: float, n: int, timeout: float) -> Stats:
        """``n`` requests due every 1/``rate`` s from 20 ms from now; returns once all are answered
        (or ``timeout`` s after the last one was due: the rest count as errors)."""
        self.stats, self.all_due, self.outstanding = Stats(), False, 0
        self.done = self.loop.create_future()
        interval = round(1e9 / rate)
        first = time.monotonic_ns() + 20_000_000
        self.stats.due0 = first / 1e9
        fd = periodic_timer(first, interval)
        k = 0

        def tick() -> None:
            nonlocal k
            try:
                fired = int.from_bytes(os.read(fd, 8), "little")
            except BlockingIOError:
                return
            for _ in range(min(fired, n - k)):
                self.dispatch((first + k * interval) / 1e9)
                k += 1
            if k >= n:
                self.loop.remove_reader(fd)
                self.all_due = True
                if self.outstanding == 0 and not self.done.done():
                    self.done.set_result(None)

        self.loop.add_reader(fd, tick)
        try:
            await asyncio.wait_for(asyncio.shield(self.done), n / rate + 1 + timeout)
        except TimeoutError:
            self.errors["timeout"] += self.outstanding
            self.queue.clear()
            for c in [c for c in self.conns if c.busy]:
                c.busy = False
                c.transport.close()
        finally:
            self.loop.remove_reader(fd)
            os.close(fd)
        return self.stats

    def close(self) -> None:
        for c in list(self.conns):
            c.transport.close()


# -- one target at one rate ------------------------------------------------------------------------


@dataclass
class Result:
    target: str
    mode: str
    rate: float
    ms: dict[str, float]  # p50 … max, ms from the due time
    achieved: float  # answers/s from the first due time to the last answer
    errors: dict[str, int]
    late_ms: tuple[float, float]  # actual send − due: p99, max
    lag_p99_ms: float  # the timer callback − due: the client's own delay
    client: str  # the client's CPU and other load on the load core
    cpu_ms: float | None = None  # the gateway's process tree, per request
    records: str = ""
    foreign: float | None = None  # other load on the gateway's core


def measure(b: Bench, t: Target, nginx: Target, mode: str, rate: float) -> Result:
    a, body = b.args, b.bodies[mode].read_bytes()
    request = (
        f"POST {t.paths[mode]} HTTP/1.1\r\nHost: 127.0.0.1:{t.port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    gw = t.proc.pids() if t.proc and t.records else []
    ng = nginx.proc.pids() if nginx.proc else []
    cores = tuple(c if "," not in c else None for c in (b.gw_core if t.records else ",", b.load_core))
    m: dict[str, float] = {}

    def mark(sign: int) -> None:  # wall, CPU of the gateway, of this client, of nginx; busy cores
        busy = overhead.core_busy()
        now = {"wall": time.time(), "gw": overhead.cpu_seconds(gw), "cli": time.process_time()}
        now |= {"nginx": overhead.cpu_seconds(ng), "gwcore": busy.get(cores[0] or "", 0.0)}
        now["loadcore"] = busy.get(cores[1] or "", 0.0)
        for k, v in now.items():
            m[k] = m.get(k, 0.0) + sign * v

    async def go() -> tuple[Stats, collections.Counter[str]]:
        pool = Pool(t.port, request, a.max_conns)
        try:
            for _ in range(min(8, a.max_conns)):
                pool.opening += 1
                await pool.open()
            await pool.run(rate, max(1, round(rate * a.warmup)), a.timeout)  # warm-up
            if t.records:
                await asyncio.to_thread(t.records.drain)
            pool.errors.clear()
            gc.collect()
            gc.disable()
            m["t0"], m["gw0"] = time.time(), overhead.cpu_seconds(gw)
            mark(-1)
            stats = await pool.run(rate, round(rate * a.duration), a.timeout)
            mark(+1)
            return stats, pool.errors
        finally:
            gc.enable()
            pool.close()

    loop_factory: Any = asyncio.new_event_loop
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        s, errors = runner.run(go())
    lat, n, wall = sorted(s.latency), len(s.latency), m["wall"]
    ms = {f"p{p:g}": pct(lat, p) * 1000 for p in PCTS} | {"max": (lat[-1] if lat else float("nan")) * 1000}
    client = f"CPU {m['cli'] / wall:.0%}"
    if cores[1]:
        client += f", other load {max(m['loadcore'] - m['cli'] - m['nginx'], 0.0) / wall:.0%}"
    span = s.last_answer - s.due0
    r = Result(
        t.name, mode, rate, ms, n / span if n and span > 0 else 0.0, dict(errors),
        (pct(s.late, 99) * 1000, max(s.late, default=float("nan")) * 1000), pct(s.lag, 99) * 1000, client,
    )  # fmt: skip
    if t.records:
        t.records.drain()
        stored = t.records.since(m["t0"])
        total = sum(stored.values())
        r.records = f"{total}/{n} {'ok' if n <= total <= n + sum(errors.values()) else 'MISMATCH'}"
        if total != stored.get("success 200", 0):
            r.records += f" {stored}"
        r.cpu_ms = (overhead.cpu_seconds(gw) - m["gw0"]) * 1000 / max(n, 1)
        r.foreign = max(m["gwcore"] - m["gw"], 0.0) / wall if cores[0] else None
    b.log(
        f"{t.name:<34} {mode:<4} {rate:5g}/s: achieved {r.achieved:5.0f}/s "
        + " ".join(f"{k} {v:.3f}" for k, v in ms.items())
        + f" ms (p99 from the actual send {pct(s.service, 99) * 1000:.3f}); client: sent late p99 "
        f"{r.late_ms[0]:.3f} max {r.late_ms[1]:.3f} ms, timer lag p99 {r.lag_p99_ms:.3f} ms, {client}, "
        f"{s.waited} waited for a connection"
        + (f"; gateway CPU/req {r.cpu_ms:.3f} ms, records {r.records}" if r.cpu_ms is not None else "")
        + (f", other load on core {cores[0]}: {r.foreign:.0%}" if r.foreign is not None else "")
        + (f"  ERRORS {r.errors}" if r.errors else "")
    )
    return r


# -- the report ----------------------------------------------------------------------------------------


def report(b: Bench, results: list[Result], command: str, started: dt.datetime, loads: list[str]) -> str:
    m, a, fmt = overhead.machine(), b.args, overhead.fmt
    out = [
        f"Run {started:%Y-%m-%d %H:%M} UTC: `{command}`",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}, "
        f"{m['nginx']}, {m['libs']}. Load average (1/5/15 min) at start {loads[0]}, at end {loads[-1]}.",
        "",
        f"Open loop: gateway on core {b.gw_core}; nginx (1 worker) and the client on core {b.load_core}. "
        f"{a.duration:g} s per run after {a.warmup:g} s of warm-up at the same rate; keep-alive connections "
        f"opened as needed (≤ {a.max_conns}). Latency in ms from each request's scheduled send time to the "
        "last byte of its answer. Client: timer lag = when its timer handled a request − when it was due (the "
        "client's own delay); sent late = actual send − due (also waiting for a free connection).",
        "",
        "| target | mode | rate | achieved req/s | p50 | p90 | p99 | p99.9 | max | added p50 | added p99 "
        "| added p99.9 | errors | client: timer lag p99, sent late p99 / max ms | client: CPU, other load on its core "
        "| gateway CPU ms/req | records / answered | other load on gateway core |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    direct = {(r.mode, r.rate): r for r in results if r.target == "nginx (direct)"}
    for r in results:
        d = direct.get((r.mode, r.rate)) if r.target != "nginx (direct)" else None
        added = [fmt(r.ms[k] - d.ms[k], "+.3f") if d else "–" for k in ("p50", "p99", "p99.9")]
        out.append(
            f"| {r.target} | {r.mode} | {r.rate:,g} | {r.achieved:,.0f} | "
            + " | ".join(f"{v:.3f}" for v in r.ms.values())
            + f" | {' | '.join(added)} | {sum(r.errors.values())}{f' {r.errors}' if r.errors else ''} | "
            f"{r.lag_p99_ms:.3f}, {r.late_ms[0]:.3f} / {r.late_ms[1]:.3f} | {r.client} | {fmt(r.cpu_ms)} | "
            f"{r.records or '–'} | {fmt(r.foreign, '.0%')} |"
        )
    return "\n".join([*out, "", f"- {ADDED_NOTE}", *[f"- {n}" for n in b.notes]])


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rates", default="500,1000,2000", help="requests/s, comma-separated (default 500,1000,2000)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per target, mode and rate")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds at the same rate before each run")
    p.add_argument("--modes", default="json", help="json, sse or json,sse")
    p.add_argument("--targets", default="direct,process,thread", help="direct (nginx), process, thread")
    p.add_argument("--max-conns", type=int, default=200, help="connection cap (the gateway answers 503 past 256)")
    p.add_argument("--timeout", type=float, default=10.0, help="s to wait for answers after the last is due")
    p.add_argument("--late-warn-ms", type=float, default=0.25, help="warn when the client's timer lag p99 is more")
    p.add_argument("--gateway-core", default="0")
    p.add_argument("--load-core", default="1")
    p.add_argument("--serve-cmd", help="run this instead of `python -m modelmeter.cli.main serve`")
    p.add_argument("--markdown", type=Path, help="also write the results (markdown) to this file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs, dbs)")
    args = p.parse_args()
    args.upstreams = 1  # read by overhead.start_modelmeter
    rates = [float(r) for r in args.rates.split(",") if r]
    if shutil.which("taskset") is None or not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        sys.exit("nginx and taskset are needed: apt-get install -y nginx util-linux")
    gw_core, load_core = ("0", "0") if os.cpu_count() == 1 else (args.gateway_core, args.load_core)
    os.sched_setaffinity(0, {int(c) for c in load_core.split(",")})  # the client stays off the gateway's core
    started = dt.datetime.now(dt.UTC)
    loads = ["{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())]
    command = "python benchmarks/openloop.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    tmp = Path(tempfile.mkdtemp(prefix="mm-openloop-"))
    b = Bench(args, tmp, gw_core, load_core)
    base = args.serve_cmd or shlex.join([sys.executable, "-m", "modelmeter.cli.main", "serve"])
    serves = {"process": ("modelmeter serve", base)}
    serves["thread"] = ("modelmeter serve --recorder thread", f"{base} --recorder thread")
    results: list[Result] = []
    procs: list[Proc] = []
    try:
        req = {"model": "mock-json", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hello"}]}
        for mode, body in (("json", req), ("sse", {**req, "model": "mock-sse", "stream": True})):
            b.bodies[mode] = tmp / f"{mode}.body"
            b.bodies[mode].write_text(json.dumps(body))
        nginx = overhead.start_nginx(b)
        assert nginx.proc is not None
        procs.append(nginx.proc)
        b.log(f"nginx pid {nginx.proc.pid} on core {load_core}, port {nginx.port}; temp dir {tmp}")
        for name in [t for t in args.targets.split(",") if t]:
            t = nginx
            if name != "direct":
                label, args.serve_cmd = serves[name]
                try:
                    t = overhead.start_modelmeter(b, nginx.port, 1, gw_core, f"modelmeter-{name}")
                except RuntimeError as exc:
                    b.notes.append(f"{label} did not start: {str(exc)[:300]}")
                    continue
                assert t.proc is not None
                procs.append(t.proc)
                t.name = label
            for mode in [m for m in args.modes.split(",") if m]:
                results += [measure(b, t, nginx, mode, rate) for rate in rates]
            if t is not nginx and t.proc is not None:
                t.proc.stop()
                procs.remove(t.proc)
    finally:
        for proc in reversed(procs):
            proc.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    loads.append("{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg()))
    for r in results:
        if r.lag_p99_ms > args.late_warn_ms:
            b.notes.append(
                f"WARNING: the client fell behind for {r.target} {r.mode} at {r.rate:g}/s: its timer handled "
                f"requests p99 {r.lag_p99_ms:.3f} ms after they were due ({r.client}); part of that tail is the "
                "client's, not the target's."
            )
        if r.achieved < 0.98 * r.rate:
            b.notes.append(f"{r.target} {r.mode} at {r.rate:g}/s answered only {r.achieved:.0f} req/s.")
    text = report(b, results, command, started, loads)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 1 if any(r.errors or "MISMATCH" in r.records for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
