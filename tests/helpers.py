"""Reusable test helpers: the real server as a subprocess, configs, ports, and an in-process harness.

Process level (end-to-end, browser and bench tests)::

    from tests.helpers import ServerProcess, free_port, write_config

    cfg = write_config(tmp_path / "modelmeter.toml", database=f"sqlite:///{tmp_path}/mm.db",
                       deployments=[{"name": "gpt", "model": "gpt-4o-mini", "api_base": fake.base_url}])
    with ServerProcess(cfg) as server:          # free port, waits for GET /healthz
        openai.OpenAI(base_url=server.base_url, api_key="x")...
        server.api("GET", "/api/deployments")   # -> (status, parsed JSON)
        rows = server.wait_for_records("gpt", 3)  # the newest 3 records, once written
    # leaving the block sends SIGTERM and waits; server.returncode, server.stdout, server.stderr

The same things are fixtures in ``tests/conftest.py``: ``fake_upstream`` (one ``FakeUpstream`` per
session), ``make_config`` (writes a TOML config in ``tmp_path``) and ``start_server`` (starts
servers, stops them at the end of the test).

In-process (unit tests): ``MemoryUpstream`` implements ``upstreams.client.UpstreamClient`` with
canned JSON / SSE answers, and ``asgi_request`` drives the ASGI app without a network, including a
client that hangs up after N body messages::

    app = create_app(settings, upstream=MemoryUpstream(), db=Database(url), start_embedded=False)
    async with app.api.router.lifespan_context(app.api):
        res = await asgi_request(app, "POST", "/v1/chat/completions", {"model": "gpt", ...})
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
# Every server the tests start uses this admin key (tests/conftest.py puts it in the environment, so
# servers and CLI commands started as subprocesses get it); ``ServerProcess.api`` sends it.
ADMIN_KEY = "test-admin-key-0123456789"
ADMIN_HEADERS = {"authorization": f"Bearer {ADMIN_KEY}"}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- ports and configs ---------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def closed_port_url() -> str:
    """An http base URL nothing listens on (connection refused): an unreachable upstream."""
    return f"http://127.0.0.1:{free_port()}/v1"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_config(
    path: str | Path,
    *,
    deployments: Iterable[Mapping[str, Any]] | None = None,
    database: str | None = None,
    **server: Any,
) -> Path:
    """Write a modelmeter TOML config: ``[server]`` from ``database`` and keyword arguments
    (``max_body_bytes=…``, ``local_threads=…``), one ``[[deployments]]`` table per mapping.
    ``deployments=None`` leaves the built-in embedded deployments in place."""
    path = Path(path)
    settings = {**({"database": database} if database else {}), **server}
    lines = ["[server]"] + [f"{_toml_key(k)} = {toml_value(v)}" for k, v in settings.items()]
    for dep in deployments or ():
        lines += ["", "[[deployments]]"]
        lines += [f"{_toml_key(k)} = {toml_value(v)}" for k, v in dep.items() if v is not None]
    path.write_text("\n".join(lines) + "\n")
    return path


def sqlite_url(path: str | Path) -> str:
    """``sqlite:///`` URL of an absolute path (the Database class wants four slashes then)."""
    return f"sqlite:///{Path(path).resolve()}"


# --- plain HTTP (no proxies, JSON in and out) -------------------------------------------------


def http_json(
    method: str, url: str, body: Any = None, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0
) -> tuple[int, Any]:
    """One request; returns (status, parsed JSON or raw text or None). Never raises on 4xx/5xx."""
    data = body if isinstance(body, bytes) else (None if body is None else orjson.dumps(body))
    req = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with _NO_PROXY.open(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    if not raw:
        return status, None
    try:
        return status, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return status, raw.decode("utf-8", "replace")


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, message: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not met within {timeout} s")
        time.sleep(interval)


# --- the real server as a subprocess ----------------------------------------------------------


class ServerProcess:
    """``python -m modelmeter.cli.main serve --config CONFIG --port PORT`` with readiness polling.

    stdout/stderr go to files (``log_dir``, a temporary directory by default) so a chatty server
    can never block on a full pipe; ``stdout``/``stderr`` read them. ``MODELMETER_DATABASE`` is
    removed from the environment unless given in ``env``, so the config's database is used.
    """

    def __init__(
        self,
        config: str | Path,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        args: Iterable[str] = (),
        log_dir: str | Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.config = Path(config)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self.args = list(args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self._tmp = None if log_dir else tempfile.TemporaryDirectory(prefix="modelmeter-server-")
        self.log_dir = Path(log_dir or self._tmp.name)  # type: ignore[union-attr]
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "modelmeter.cli.main",
            "serve",
            "--config",
            str(self.config),
            "--port",
            str(self.port),
            *self.args,
        ]

    def start(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if k != "MODELMETER_DATABASE"}
        env.update(self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / "stdout").open("wb") as out, (self.log_dir / "stderr").open("wb") as err:
            self.proc = subprocess.Popen(
                self.command, cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        self.returncode = None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise RuntimeError(f"modelmeter exited with {self.returncode} before it was ready:\n{self.stderr}")
            try:
                if http_json("GET", f"{self.url}/healthz", timeout=1.0)[0] == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"modelmeter not ready in {self.startup_timeout} s:\n{self.stderr}")
            time.sleep(0.03)

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 40.0) -> int:
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int | None:
        """Graceful stop (SIGTERM by default); kills after ``timeout``. Returns the exit code."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            self.returncode = self.proc.returncode

    @property
    def stdout(self) -> str:
        return (self.log_dir / "stdout").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.log_dir / "stderr").read_text(errors="replace")

    def api(self, method: str, path: str, body: Any = None, *, auth: bool = True, **kw: Any) -> tuple[int, Any]:
        """A request to this server with the admin key: ``server.api("GET", "/api/deployments")``
        (``auth=False``: without it)."""
        if auth:
            kw["headers"] = {**ADMIN_HEADERS, **(kw.get("headers") or {})}
        return http_json(method, self.url + path, body, **kw)

    def records(self, deployment: str, *, limit: int = 200, **query: Any) -> list[dict[str, Any]]:
        """The newest records of a deployment (request log, window 1h), newest first."""
        params = "&".join(f"{k}={v}" for k, v in {"window": "1h", "limit": limit, **query}.items())
        status, body = self.api("GET", f"/api/deployments/{deployment}/requests?{params}")
        assert status == 200, body
        return list(body["data"])

    def wait_for_records(self, deployment: str, n: int, timeout: float = 10.0, **query: Any) -> list[dict[str, Any]]:
        """Wait until the deployment has at least ``n`` records (matching ``query``, e.g.
        ``tag="t1"`` or ``status="error"``); returns the newest ``n``, newest first."""
        rows = wait_for(
            lambda: (r := self.records(deployment, **query)) and len(r) >= n and r,
            timeout,
            message=f"{n} records of {deployment} {query or ''}",
        )
        return list(rows[:n])

    def record(self, rid: str) -> dict[str, Any]:
        """One whole record, with its bodies (``GET /api/requests/{id}``)."""
        status, body = self.api("GET", f"/api/requests/{rid}")
        assert status == 200, body
        return dict(body)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def read_sqlite_records(path: str | Path) -> list[dict[str, Any]]:
    """Every row of ``records`` straight from a SQLite file (no server needed), oldest first."""
    conn = sqlite3.connect(str(path))
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM records ORDER BY start_us, id")]
    finally:
        conn.close()


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``python -m modelmeter.cli.main ARGS`` to completion (text output, never raises)."""
    return subprocess.run(
        [sys.executable, "-m", "modelmeter.cli.main", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- in-process: an in-memory upstream and an ASGI driver --------------------------------------


def sse(*events: Any, done: bool = True, sep: bytes = b"\n\n") -> bytes:
    """An SSE body: each event JSON-encoded (bytes/str kept as they are), then ``[DONE]``."""
    parts = [e if isinstance(e, bytes) else (e.encode() if isinstance(e, str) else orjson.dumps(e)) for e in events]
    if done:
        parts.append(b"[DONE]")
    return b"".join(b"data: " + p + sep for p in parts)


class CannedResponse:
    """An ``UpstreamResponse``: a whole body, or SSE ``chunks`` (each may be delayed), optionally
    followed by an exception (an ``UpstreamError`` for a broken stream)."""

    def __init__(
        self,
        status: int = 200,
        body: Any = None,
        *,
        chunks: Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        error: BaseException | None = None,
    ) -> None:
        self.status = status
        self.streamed = chunks is not None
        self._body = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        self._chunks = list(chunks or ())
        ctype = "text/event-stream; charset=utf-8" if self.streamed else "application/json"
        self.headers: dict[str, str] = {"content-type": ctype, **(headers or {})}
        self.delay = delay
        self.error = error
        self.closed = False
        self.sent_chunks = 0

    async def read(self) -> bytes:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self._body if self._body is not None else b"".join(self._chunks)

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks if self.streamed else [self._body or b""]:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.closed:
                return
            self.sent_chunks += 1
            yield chunk
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


@dataclass
class UpstreamCall:
    method: str
    url: str
    body: Any
    headers: dict[str, str]
    timeouts: Any


Responder = Callable[[UpstreamCall], "CannedResponse | BaseException"]


class MemoryUpstream:
    """An ``UpstreamClient`` in memory. ``respond(call)`` makes each answer (or an exception to
    raise, e.g. ``UpstreamError("timeout", …)``); the default is ``default_answer``. Every call is
    kept in ``calls`` and every response in ``responses``."""

    def __init__(self, respond: Responder | None = None) -> None:
        self.respond: Responder = respond or default_answer
        self.calls: list[UpstreamCall] = []
        self.responses: list[CannedResponse] = []
        self.closed = False

    async def _do(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeouts: Any
    ) -> CannedResponse:
        call = UpstreamCall(method, url, None if body is None else orjson.loads(body), dict(headers), timeouts)
        self.calls.append(call)
        answer = self.respond(call)
        if isinstance(answer, BaseException):
            raise answer
        self.responses.append(answer)
        return answer

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Any) -> CannedResponse:
        return await self._do("POST", url, body, headers, timeouts)

    async def get(self, url: str, headers: Mapping[str, str], timeouts: Any) -> CannedResponse:
        return await self._do("GET", url, None, headers, timeouts)

    async def close(self) -> None:
        self.closed = True

    @property
    def last(self) -> UpstreamCall:
        return self.calls[-1]


def chat_completion(
    model: str, text: str = "Hello there!", usage: Mapping[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        **extra,
    }
    if usage is not None:
        body["usage"] = dict(usage)
    return body


def chat_chunks(
    model: str,
    pieces: Iterable[str] = ("Hel", "lo", "!"),
    *,
    usage: Mapping[str, Any] | None = None,
    usage_on_last_content: bool = False,
    finish: str = "stop",
) -> list[dict[str, Any]]:
    """OpenAI-style chunks: role, one per piece, finish, then (if ``usage``) a usage-only chunk —
    or, with ``usage_on_last_content``, the usage on the finish chunk instead."""
    head = {"id": "chatcmpl-456", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model}
    out = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    out += [{**head, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    last = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    if usage is not None and usage_on_last_content:
        last["usage"] = dict(usage)
    out.append(last)
    if usage is not None and not usage_on_last_content:
        out.append({**head, "choices": [], "usage": dict(usage)})
    return out


def usage_dict(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def default_answer(call: UpstreamCall) -> CannedResponse:
    """What a well-behaved upstream says: usage everywhere, streams end in ``[DONE]``."""
    body = call.body or {}
    if call.method == "GET":
        return CannedResponse(200, {"object": "list", "data": []})
    model = body.get("model", "?")
    if call.url.endswith("/embeddings"):
        return CannedResponse(
            200,
            {
                "object": "list",
                "model": model,
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            },
        )
    include = (body.get("stream_options") or {}).get("include_usage") is True
    if url_is(call, "/completions") and not url_is(call, "/chat/completions"):
        head = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": model}
        if body.get("stream"):
            chunks = [{**head, "choices": [{"index": 0, "text": t, "finish_reason": None}]} for t in ("one", " two")]
            chunks.append({**head, "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]})
            if include:
                chunks.append({**head, "choices": [], "usage": usage_dict(3, 2)})
            return CannedResponse(200, chunks=[sse(*chunks)])
        return CannedResponse(
            200,
            {**head, "choices": [{"index": 0, "text": "one two", "finish_reason": "stop"}], "usage": usage_dict(3, 2)},
        )
    if body.get("stream"):
        chunks = chat_chunks(model, usage=usage_dict(11, 3) if include else None)
        return CannedResponse(200, chunks=[sse(*chunks)])
    return CannedResponse(200, chat_completion(model, usage=usage_dict(11, 3)))


def url_is(call: UpstreamCall, suffix: str) -> bool:
    return call.url.endswith(suffix)


@dataclass
class AsgiResult:
    status: int
    headers: dict[str, str]
    body: bytes
    messages: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False  # the app sent the final body message

    def json(self) -> Any:
        return orjson.loads(self.body)

    def events(self) -> list[Any]:
        """The ``data:`` payloads of an SSE body, JSON-decoded (``"[DONE]"`` and non-JSON kept as text)."""
        out: list[Any] = []
        for block in self.body.decode().split("\n\n"):
            data = "\n".join(line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:"))
            if data:
                try:
                    out.append(data if data == "[DONE]" else json.loads(data))
                except ValueError:
                    out.append(data)  # not JSON: kept as the text it is
        return out


async def asgi_request(
    app: Any,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    client: tuple[str, int] | None = ("203.0.113.77", 50000),
    body_parts: int = 1,
    disconnect_after: int | None = None,
    disconnect_after_s: float | None = None,
    query: str = "",
) -> AsgiResult:
    """Drive an ASGI app with one HTTP request, the way uvicorn would.

    ``body`` (bytes, or anything JSON-encodable) arrives in ``body_parts`` messages. After it,
    ``receive`` waits until the response is complete (then says ``http.disconnect``, as uvicorn
    does), or until the client hangs up: after ``disconnect_after`` response-body messages, or
    ``disconnect_after_s`` seconds. Once disconnected, ``send`` ignores messages, like uvicorn.
    """
    raw = b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
    hdrs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    if raw and not any(k == b"content-type" for k, _ in hdrs):
        hdrs.append((b"content-type", b"application/json"))
    if body_parts == 1 and not any(k == b"content-length" for k, _ in hdrs):
        hdrs.append((b"content-length", str(len(raw)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": hdrs,
        "client": client,
        "server": ("127.0.0.1", 8000),
    }
    step = max(1, -(-len(raw) // body_parts)) if raw else 1
    pieces = [raw[i : i + step] for i in range(0, len(raw), step)] or [b""]
    gone = asyncio.Event()
    result = AsgiResult(0, {}, b"")
    body_messages = 0

    async def receive() -> dict[str, Any]:
        if pieces:
            chunk = pieces.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pieces)}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal body_messages
        if gone.is_set():
            return
        result.messages.append(message)
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")
            body_messages += 1
            if not message.get("more_body"):
                result.complete = True
                gone.set()
            elif disconnect_after is not None and body_messages >= disconnect_after:
                gone.set()
        await asyncio.sleep(0)

    timer = None
    if disconnect_after_s is not None:
        timer = asyncio.get_running_loop().call_later(disconnect_after_s, gone.set)
    try:
        await app(scope, receive, send)
    finally:
        if timer is not None:
            timer.cancel()
    return result


@dataclass
class Harness:
    """A running in-process app (lifespan entered) with its in-memory upstream and database."""

    app: Any
    upstream: MemoryUpstream
    db: Any

    async def request(self, method: str, path: str, body: Any = None, **kw: Any) -> AsgiResult:
        return await asgi_request(self.app, method, path, body, **kw)

    async def chat(self, body: Mapping[str, Any], **kw: Any) -> AsgiResult:
        return await asgi_request(self.app, "POST", "/v1/chat/completions", dict(body), **kw)

    async def records(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until ``n`` records are written; all records with bodies, oldest first."""
        from modelmeter.usage.records import one

        recorder = self.app.state.recorder
        deadline = time.monotonic() + timeout
        while recorder.written < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {recorder.written} of {n} records written")
            await asyncio.sleep(0.005)
        ids = [r[0] for r in self.db.fetchall("SELECT id FROM records ORDER BY start_us, id")]
        return [one(self.db, i) for i in ids]

    submitted: int = 0  # records the gateway handed to the recorder

    async def written(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Every record submitted so far, once written (oldest first)."""
        return await self.records(self.submitted, timeout)

    async def record(self) -> dict[str, Any]:
        """The newest record, once everything submitted so far is written."""
        rows = await self.written()
        assert rows, "no record was submitted"
        return rows[-1]


@contextlib.asynccontextmanager
async def running_app(
    db_url: str, deployments: Iterable[Any], upstream: MemoryUpstream | None = None, **settings: Any
) -> AsyncIterator[Harness]:
    """``create_app`` with an in-memory upstream, its lifespan entered (migrations, recorder)."""
    from modelmeter.app import create_app
    from modelmeter.config import Deployment, Settings
    from modelmeter.storage.database import Database

    deps = tuple(d if isinstance(d, Deployment) else Deployment.from_mapping(dict(d)) for d in deployments)
    settings.setdefault("auth", False)  # in-process harness: auth has its own tests
    upstream = upstream or MemoryUpstream()
    db = Database(db_url)
    app = create_app(
        Settings(database=db_url, deployments=deps, **settings), upstream=upstream, db=db, start_embedded=False
    )
    harness = Harness(app, upstream, db)
    recorder = app.state.recorder
    submit_nowait = recorder.submit_nowait

    def counting(rec: Any) -> bool:
        ok = submit_nowait(rec)
        harness.submitted += ok
        return bool(ok)

    recorder.submit_nowait = counting
    async with app.api.router.lifespan_context(app.api):
        yield harness
