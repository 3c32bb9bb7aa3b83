"""Shared pieces of the reliability tests.

* ``run_load``: a bounded asyncio load driver on aiohttp (count, concurrency, optional rate,
  optional stop event and time limit; loopback only). Every request carries a unique tag in
  ``x-modelmeter-tags``, so each client outcome can be matched to exactly one stored record.
* ``mixed`` / ``successes_only``: deterministic request mixes over ``deployments(fake)``.
* ``stored_records``, ``record_totals``, ``rollup_totals``: the raw rows and the rollup tables,
  read straight from the SQLite file or the PostgreSQL database (no server needed).
* ``check_against_records``: client outcomes == records (one per request, same status), and the
  usage API's summaries and the rollup tables == sums of the raw records, exactly.
* ``fresh_pg_database``: a new database on the shared PostgreSQL server, dropped afterwards.
* ``PrivatePostgres``: a throw-away PostgreSQL cluster (initdb + pg_ctl on a free port, run as the
  ``postgres`` user when we are root) that a test may stop and start at will.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from modelmeter.storage import histogram
from modelmeter.storage.rollups import SUM_COLUMNS
from modelmeter.units import PICO
from tests.helpers import ServerProcess, free_port
from tests.pg_databases import temp_database

TAG_HEADER = "x-modelmeter-tags"
MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there world"}]
TOKEN_COLUMNS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")


def deployments(base_url: str) -> list[dict[str, Any]]:
    """Priced successes (genai-prices and price overrides), an embedding model, and two that fail."""
    return [
        {"name": "chat", "model": "gpt-4o-mini", "provider": "openai", "api_base": base_url},
        {
            "name": "acme",
            "model": "fake-model",
            "provider": "acme",
            "api_base": base_url,
            "price": {"input": 1.5, "output": 6.0},
        },
        {
            "name": "cached",
            "model": "fake-cached",
            "provider": "acme",
            "api_base": base_url,
            "price": {"input": 1.0, "cached_input": 0.25, "output": 2.0},
        },
        {"name": "emb", "model": "text-embedding-3-small", "provider": "openai", "api_base": base_url},
        {"name": "fail-500", "model": "fail-500", "provider": "acme", "api_base": base_url},
        {"name": "fail-400", "model": "fail-400", "provider": "acme", "api_base": base_url},
    ]


DEPLOYMENT_NAMES = ("chat", "acme", "cached", "emb", "fail-500", "fail-400")


@dataclass(frozen=True)
class Req:
    path: str
    body: dict[str, Any]
    deployment: str

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


def _chat(dep: str, i: int, stream: bool = False, usage: bool = False) -> Req:
    body: dict[str, Any] = {"model": dep, "messages": MSGS, "max_tokens": 1 + i % 5}
    if stream:
        body["stream"] = True
        if usage:
            body["stream_options"] = {"include_usage": True}
    return Req("/v1/chat/completions", body, dep)


def mixed(i: int) -> Req:
    """Request ``i`` of the load: 30 % chat, 20 % streamed chat, 15 % completions (one in three
    streamed), 10 % embeddings, 5 % cached chat, 10 % upstream 500s, 10 % upstream 400s."""
    k = i % 20
    if k < 6:
        return _chat("chat", i)
    if k < 10:
        return _chat("chat", i, stream=True, usage=k % 2 == 0)
    if k < 13:
        body: dict[str, Any] = {"model": "acme", "prompt": "one two three", "max_tokens": 2 + i % 3}
        if k == 12:
            body.update(stream=True, stream_options={"include_usage": True})
        return Req("/v1/completions", body, "acme")
    if k < 15:
        return Req("/v1/embeddings", {"model": "emb", "input": ["alpha beta", "gamma"][i % 2]}, "emb")
    if k == 15:
        return _chat("cached", i)
    if k < 18:
        return _chat("fail-500", i, stream=k == 16)
    return _chat("fail-400", i, stream=k == 18)


def chat_or_fail(i: int) -> Req:
    """Call ``i`` to deployments "chat" and "fail" (an upstream that answers 500): one in ten to
    "fail"; a third of all streamed, half of those asking for usage."""
    return _chat("fail" if i % 10 == 9 else "chat", i, stream=i % 3 == 1, usage=i % 2 == 1)


def successes_only(i: int) -> Req:
    """Only calls the fake answers well: chat (streamed or not), completions, embeddings."""
    k = i % 10
    if k < 4:
        return _chat("chat", i)
    if k < 7:
        return _chat("chat", i, stream=True, usage=k % 2 == 0)
    if k < 9:
        return Req("/v1/completions", {"model": "acme", "prompt": "one two three", "max_tokens": 3}, "acme")
    return Req("/v1/embeddings", {"model": "emb", "input": "alpha beta"}, "emb")


@dataclass
class Outcome:
    i: int
    tag: str
    deployment: str
    stream: bool
    sent_at: float  # monotonic
    done_at: float = 0.0
    status: int | None = None  # None: the connection failed before a status line
    complete: bool = False  # the whole response arrived (a stream: its [DONE] and its end)
    ok: bool = False  # a complete success as the client sees it
    error: str | None = None  # the exception, if the connection failed

    @property
    def answered(self) -> bool:
        """A complete response, success or error: this must have a record."""
        return self.status is not None and self.complete


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    duration: float = 0.0

    @property
    def answered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.answered]

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ok]

    def summary(self) -> dict[str, Any]:
        statuses = Counter(o.status if o.complete else ("partial" if o.status else "conn-error") for o in self.outcomes)
        rate = len(self.outcomes) / self.duration if self.duration else 0.0
        return {
            "sent": len(self.outcomes),
            "ok": len(self.ok),
            "answered": len(self.answered),
            "statuses": dict(statuses),
            "seconds": round(self.duration, 2),
            "per_s": round(rate),
        }


async def _one(session: aiohttp.ClientSession, url: str, req: Req, out: Outcome, timeout: float) -> None:
    headers = {TAG_HEADER: out.tag, "content-type": "application/json"}
    try:
        async with session.post(
            url + req.path, data=orjson.dumps(req.body), headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            out.status = resp.status
            data = await resp.read()
        if resp.status != 200:
            out.complete = True
        elif req.stream:
            # A stream that failed upstream ends with an error event instead of [DONE].
            out.complete = data.rstrip().endswith(b"data: [DONE]") or b'"error"' in data
            out.ok = out.complete and b'"error"' not in data
        else:
            out.complete = out.ok = isinstance(orjson.loads(data), dict)
    except (TimeoutError, aiohttp.ClientError, OSError, orjson.JSONDecodeError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        out.complete = out.ok = False
    out.done_at = time.monotonic()


async def run_load(
    url: str,
    n: int,
    make: Callable[[int], Req],
    *,
    concurrency: int = 200,
    rate: float | None = None,
    run_id: str = "load",
    stop: asyncio.Event | None = None,
    max_seconds: float = 120.0,
    timeout: float = 60.0,
) -> LoadResult:
    """Send up to ``n`` requests to ``url`` (the server's root), at most ``concurrency`` at once;
    with ``rate``, request ``i`` starts no earlier than ``i / rate`` s after the first. Stops
    starting new ones when ``stop`` is set or after ``max_seconds``; waits for those in flight."""
    assert url.startswith(("http://127.", "http://localhost", "http://[::1]")), "loopback only"
    result = LoadResult()
    next_i = 0
    t0 = time.monotonic()
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_i
        while next_i < n and not (stop is not None and stop.is_set()):
            if time.monotonic() - t0 > max_seconds:
                return
            i = next_i
            next_i += 1
            if rate is not None:
                await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                if stop is not None and stop.is_set():
                    return
            req = make(i)
            out = Outcome(i, f"{run_id}-{i}", req.deployment, req.stream, time.monotonic())
            result.outcomes.append(out)
            await _one(session, url, req, out, timeout)

    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        await asyncio.gather(*(worker(session) for _ in range(min(concurrency, n))))
    result.duration = time.monotonic() - t0
    return result


# --- what the database holds --------------------------------------------------------------------

_RECORD_COLUMNS = ("id", "deployment", "status", "http_status", "stream", "tags", "spend_pusd", *TOKEN_COLUMNS)


def stored_records(db: str) -> list[dict[str, Any]]:
    """The records of a SQLite file (a path) or a PostgreSQL database (a URL), a few columns each."""
    sql = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM records"
    if db.startswith("postgres"):
        import psycopg

        with psycopg.connect(db, connect_timeout=5) as conn:
            rows = conn.execute(sql).fetchall()
    else:
        conn = sqlite3.connect(db, timeout=30)
        try:
            rows = conn.execute(sql).fetchall()
        finally:
            conn.close()
    return [dict(zip(_RECORD_COLUMNS, r, strict=True)) for r in rows]


def count_records(db: str) -> int:
    if db.startswith("postgres"):
        import psycopg

        with psycopg.connect(db, connect_timeout=5) as conn:
            row = conn.execute("SELECT COUNT(*) FROM records").fetchone()
    else:
        conn = sqlite3.connect(db, timeout=30)
        try:
            row = conn.execute("SELECT COUNT(*) FROM records").fetchone()
        finally:
            conn.close()
    return int(row[0]) if row else 0


def tag_of(row: Mapping[str, Any]) -> str:
    tags = orjson.loads(row["tags"]) if row["tags"] else []
    assert len(tags) == 1, row
    return str(tags[0])


def record_totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per deployment: requests, succeeded, the token columns and spend (pico-USD), from raw rows."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        t = out.setdefault(r["deployment"], dict.fromkeys(("requests", "succeeded", *TOKEN_COLUMNS, "spend_pusd"), 0))
        t["requests"] += 1
        t["succeeded"] += r["status"] == "success"
        for col in (*TOKEN_COLUMNS, "spend_pusd"):
            t[col] += int(r[col])
    return out


def rollup_totals(db: str, table: str) -> dict[str, dict[str, int]]:
    """Per deployment, the integer sums of a rollup table (``rollup_minute`` / ``rollup_quarter`` / ``rollup_hour``) and
    the number of latencies in its histograms."""
    cols = [c for c in SUM_COLUMNS if c not in ("latency_sum", "ttft_sum", "ttft_count")]
    sums = f"SELECT deployment, {', '.join(f'SUM({c})' for c in cols)} FROM {table} GROUP BY deployment"
    hist = f"SELECT deployment, latency_bins FROM {table}"
    if db.startswith("postgres"):
        import psycopg

        with psycopg.connect(db, connect_timeout=5) as conn:
            rows, hrows = conn.execute(sums).fetchall(), conn.execute(hist).fetchall()
    else:
        conn = sqlite3.connect(db, timeout=30)
        try:
            rows, hrows = conn.execute(sums).fetchall(), conn.execute(hist).fetchall()
        finally:
            conn.close()
    out = {r[0]: {c: int(v) for c, v in zip(cols, r[1:], strict=True)} for r in rows}
    for dep, bins in hrows:
        counted = out.setdefault(dep, {})
        counted["histogram"] = counted.get("histogram", 0) + sum(histogram.decode(bins).values())
    return out


def check_against_records(server: ServerProcess | None, db: str, load: LoadResult) -> dict[str, Any]:
    """The records match what the client saw, one for one; the summaries of the usage API (if a
    server is given) and the rollup tables match the raw records exactly. Returns the facts."""
    rows = stored_records(db)
    by_tag: dict[str, dict[str, Any]] = {}
    for r in rows:
        tag = tag_of(r)
        assert tag not in by_tag, f"two records for {tag}"
        by_tag[tag] = r
    sent = {o.tag: o for o in load.outcomes}
    assert len(rows) == len(load.outcomes), (len(rows), load.summary())
    assert set(by_tag) == set(sent), sorted(set(by_tag) ^ set(sent))[:10]
    mismatched = [
        (o.tag, o.status, o.ok, by_tag[o.tag]["http_status"], by_tag[o.tag]["status"])
        for o in load.outcomes
        if (by_tag[o.tag]["status"] == "success") != o.ok or by_tag[o.tag]["http_status"] != o.status
    ]
    assert not mismatched, mismatched[:10]
    totals = record_totals(rows)
    client = Counter((o.deployment, o.ok) for o in load.outcomes)
    for dep, t in totals.items():
        assert t["succeeded"] == client[(dep, True)] and t["requests"] - t["succeeded"] == client[(dep, False)]
    assert sum(t["spend_pusd"] for t in totals.values()) > 0, "nothing was priced"
    for table in ("rollup_minute", "rollup_quarter", "rollup_hour"):
        rolled = rollup_totals(db, table)
        assert set(rolled) == set(totals), (table, rolled, totals)
        for dep, t in totals.items():
            assert rolled[dep]["histogram"] == t["requests"], (table, dep)
            assert {k: rolled[dep][k] for k in t} == t, (table, dep, rolled[dep], t)
    if server is not None:
        api_total = 0
        for dep, t in totals.items():
            status, summary = server.api("GET", f"/api/deployments/{dep}/usage?window=1h")
            assert status == 200, summary
            expected = {
                "requests": t["requests"],
                "succeeded": t["succeeded"],
                "failed": t["requests"] - t["succeeded"],
                **{c: t[c] for c in TOKEN_COLUMNS},
                "spend": t["spend_pusd"] / PICO,
            }
            assert {k: summary[k] for k in expected} == expected, (dep, summary, expected)
            api_total += summary["requests"]
        assert api_total == len(rows)
    return {
        "records": len(rows),
        "by_deployment": {d: t["requests"] for d, t in sorted(totals.items())},
        "succeeded": sum(t["succeeded"] for t in totals.values()),
    }


def wait_until_stored(db: str, n: int, timeout: float) -> float:
    """Poll the database until it holds ``n`` records; the seconds it took."""
    t0 = time.monotonic()
    last = -1
    while time.monotonic() - t0 < timeout:
        with contextlib.suppress(Exception):
            last = count_records(db)
            if last >= n:
                return time.monotonic() - t0
        time.sleep(0.2)
    raise AssertionError(f"only {last} of {n} records stored after {timeout} s")


# --- PostgreSQL ----------------------------------------------------------------------------------


def fresh_pg_database() -> contextlib.AbstractContextManager[str]:
    """A new, empty database on the shared server; its URL. Dropped afterwards."""
    return temp_database("mm_rel")


def postgres_bin() -> Path | None:
    """The directory of the newest installed PostgreSQL server binaries (initdb, pg_ctl)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """``initdb`` + ``pg_ctl`` on a free loopback port in a temporary directory; as root, run as
    the ``postgres`` user (initdb refuses root). Nobody else uses it, so a test may stop it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        as_root = os.geteuid() == 0
        # As root, a directory the postgres user can reach (pytest's own are root's, mode 0700).
        self.root = Path(tempfile.mkdtemp(prefix="mm-private-pg-", dir="/tmp" if as_root else None))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if as_root:
            shutil.chown(self.root, user="postgres")
            runuser = shutil.which("runuser")
            self._as = (
                [runuser, "-u", "postgres", "--"]
                if runuser
                else ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
            )

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        cmd = [*self._as, *args]
        res = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False)
        if res.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n{log}")
        return res

    def init(self) -> PrivatePostgres:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        return self

    def start(self) -> float:
        """Start the server (waits until it accepts connections); the seconds it took."""
        t0 = time.monotonic()
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
        )
        return time.monotonic() - t0

    def stop(self, mode: str = "fast") -> float:
        t0 = time.monotonic()
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        return time.monotonic() - t0

    def running(self) -> bool:
        res = subprocess.run(
            [*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return res.returncode == 0

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            if self.data.exists() and self.running():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def metric(text: str, name: str) -> float:
    """The value of an unlabelled Prometheus sample in ``/metrics`` text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)
