"""The /v1 front door against a real server: tags, model kinds, /v1/models/{id}, CORS, the registry
without its database, and what it refuses (other pages, other hosts, loops, rejected-call floods).

Each test starts its own server (``start_server``) on the session's fake upstream, or on a tiny
local upstream where the fake has no such behaviour (llama.cpp's 501).
"""

from __future__ import annotations

import contextlib
import http.client
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, free_port, wait_for

MSGS = [{"role": "user", "content": "Say hello."}]
ORIGIN = "https://app.example"


def deployments(fake: FakeUpstream, kinds: bool = False) -> list[dict[str, Any]]:
    """``chat``, ``emb`` and ``acme/plain`` on the fake; with ``kinds``, the first two say their kind."""
    return [
        {"name": "chat", "model": "fake-model", "api_base": fake.base_url, "kind": "chat" if kinds else None},
        {"name": "emb", "model": "fake-model", "api_base": fake.base_url, "kind": "embedding" if kinds else None},
        {"name": "acme/plain", "model": "fake-model", "api_base": fake.base_url},
    ]


@pytest.fixture
def server(fake_upstream: FakeUpstream, make_config: Any, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(make_config(deployments(fake_upstream)))


def sdk(server: ServerProcess, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, **kw)


@dataclass
class Resp:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return orjson.loads(self.content)


def request(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str | bytes] | None = None,
) -> Resp:
    """One raw HTTP request (http.client sends exactly these headers: no content type added, any
    Host, header bytes as given)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host="host" in {k.lower() for k in headers or {}}, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return Resp(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def post(server: ServerProcess, path: str, body: Any, headers: Mapping[str, str | bytes] | None = None) -> Resp:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return request(server, "POST", path, content, {"content-type": "application/json", **(headers or {})})


def error_of(resp: Resp, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    err = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"} and err["code"] == code, err
    return dict(err)


def db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


# --- #11.6 non-ASCII tags ------------------------------------------------------------------------


def test_non_ascii_tags_are_stored_as_sent(server: ServerProcess) -> None:
    tags = "équipe,日本語,naïve"
    resp = post(
        server,
        "/v1/chat/completions",
        {"model": "chat", "messages": MSGS},
        headers={"x-modelmeter-tags": tags.encode("utf-8")},
    )
    assert resp.status_code == 200, resp.text
    [rec] = server.wait_for_records("chat", 1, tag=urllib.parse.quote("équipe"))
    assert rec["tags"] == ["équipe", "日本語", "naïve"]
    assert server.records("chat", tag=urllib.parse.quote("日本語"))[0]["id"] == rec["id"]
    # Not UTF-8 (a latin-1 client): still stored, read as latin-1.
    resp = post(
        server,
        "/v1/chat/completions",
        {"model": "chat", "messages": MSGS},
        headers={"x-modelmeter-tags": "café-latin1".encode("latin-1")},
    )
    assert resp.status_code == 200
    assert server.wait_for_records("chat", 1, tag=urllib.parse.quote("café-latin1"))


# --- #11.13 the wrong kind of model --------------------------------------------------------------


def test_wrong_kind_of_model_is_a_clear_400_before_the_upstream(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_config(deployments(fake_upstream, kinds=True)))
    before = fake_upstream.stats()["requests"]
    client = sdk(server)
    with pytest.raises(openai.BadRequestError) as chat_to_emb:
        client.chat.completions.create(model="emb", messages=MSGS)  # type: ignore[arg-type]
    assert chat_to_emb.value.code == "wrong_model_kind"
    assert "'emb' is an embeddings model; use /v1/embeddings" in chat_to_emb.value.message
    with pytest.raises(openai.BadRequestError) as emb_to_chat:
        client.embeddings.create(model="chat", input="hi")
    assert emb_to_chat.value.code == "wrong_model_kind"
    assert "'chat' is a chat model; use /v1/chat/completions" in emb_to_chat.value.message
    assert client.embeddings.create(model="emb", input="hi").data  # the right kinds still work
    assert client.chat.completions.create(model="chat", messages=MSGS).choices  # type: ignore[arg-type]
    after = fake_upstream.stats()["requests"]
    assert sum(after.values()) - sum(before.values()) == 2, (before, after)  # only the two good calls
    recs = server.wait_for_records("emb", 2)
    assert {r["http_status"] for r in recs} == {200, 400}


class Llama501:
    """A llama.cpp server started without --embeddings: 501 with an integer code; counts calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._runner: web.AppRunner | None = None

    async def embeddings(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = {
            "error": {
                "code": 501,
                "message": "This server does not support embeddings. Start it with `--embeddings`",
                "type": "not_supported_error",
            }
        }
        return web.json_response(body, status=501)

    @contextlib.contextmanager
    def running(self) -> Iterator[Llama501]:
        import asyncio

        loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/v1/embeddings", self.embeddings)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            ready.set()

        thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
        thread.start()
        assert ready.wait(10)
        try:
            yield self
        finally:
            assert self._runner is not None
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


def test_upstream_501_is_not_retried_and_gets_a_string_code(
    make_config: Any, start_server: Callable[..., ServerProcess]
) -> None:
    with Llama501().running() as llama:
        server = start_server(
            make_config([{"name": "llama", "model": "m", "api_base": llama.base_url, "max_retries": 2}])
        )
        with pytest.raises(openai.APIStatusError) as exc:
            sdk(server).embeddings.create(model="llama", input="hi")
        assert exc.value.status_code == 501
        err = exc.value.body
        assert isinstance(err, dict) and err["code"] == "upstream_501", err  # a string, not 501
        assert err["type"] == "not_supported_error" and "--embeddings" in err["message"]
        assert set(err) >= {"message", "type", "param", "code"}
        assert llama.calls == 1  # never retried
        [rec] = server.wait_for_records("llama", 1)
        assert rec["http_status"] == 501 and rec["retries"] == 0


# --- #11.20 GET /v1/models/{id} and CORS ---------------------------------------------------------


def test_retrieve_a_model(server: ServerProcess) -> None:
    client = sdk(server)
    model = client.models.retrieve("chat")
    assert (model.id, model.object, model.owned_by) == ("chat", "model", "openai")
    assert client.models.retrieve("acme/plain").id == "acme/plain"  # names with a slash
    with pytest.raises(openai.NotFoundError) as exc:
        client.models.retrieve("nope")
    assert exc.value.code == "model_not_found"
    resp = request(server, "GET", "/v1/models/nope")
    error_of(resp, 404, "model_not_found")


def test_cors_only_for_configured_origins(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_config(deployments(fake_upstream), cors_origins=[ORIGIN]))
    url = "/v1/chat/completions"
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    resp = request(server, "OPTIONS", url, headers={"origin": ORIGIN, **preflight})
    assert resp.status_code == 200, resp.text
    assert resp.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in resp.headers["access-control-allow-methods"]
    assert "authorization" in resp.headers["access-control-allow-headers"].lower()
    ok = post(server, "/v1/chat/completions", {"model": "chat", "messages": MSGS}, headers={"origin": ORIGIN})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
    models = request(server, "GET", "/v1/models", headers={"origin": ORIGIN})
    assert models.headers["access-control-allow-origin"] == ORIGIN
    other = "https://evil.example"
    assert (
        "access-control-allow-origin"
        not in request(server, "OPTIONS", url, headers={"origin": other, **preflight}).headers
    )
    resp = post(server, "/v1/chat/completions", {"model": "chat", "messages": MSGS}, headers={"origin": other})
    assert resp.status_code == 200 and "access-control-allow-origin" not in resp.headers


def test_cors_is_off_by_default(server: ServerProcess) -> None:
    resp = request(
        server, "OPTIONS", "/v1/chat/completions", headers={"origin": ORIGIN, "access-control-request-method": "POST"}
    )
    assert "access-control-allow-origin" not in resp.headers
    ok = post(server, "/v1/chat/completions", {"model": "chat", "messages": MSGS}, headers={"origin": ORIGIN})
    assert ok.status_code == 200 and "access-control-allow-origin" not in ok.headers


# --- #11.21 the registry without its database ----------------------------------------------------


def test_unknown_model_is_a_clean_404_with_the_database_down(
    server: ServerProcess, make_config: Any, fake_upstream: FakeUpstream
) -> None:
    db = make_config.db_path
    # The deployments table goes away (a database that fails): unknown models still answer 404.
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("ALTER TABLE deployments RENAME TO deployments_gone")
    for _ in range(3):
        resp = post(server, "/v1/chat/completions", {"model": "not-there", "messages": MSGS})
        error_of(resp, 404, "model_not_found")
        time.sleep(0.6)  # across background reloads that fail (pacing, not an assertion)
    assert post(server, "/v1/chat/completions", {"model": "chat", "messages": MSGS}).status_code == 200
    # The database is back and another process adds a deployment: picked up in the background.
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("ALTER TABLE deployments_gone RENAME TO deployments")
        definition = orjson.dumps({"name": "late", "model": "fake-model", "api_base": fake_upstream.base_url}).decode()
        conn.execute(
            "INSERT INTO deployments (name, definition, created_us) VALUES (?, ?, ?)",
            ("late", definition, int(time.time() * 1e6)),
        )
    wait_for(
        lambda: post(server, "/v1/chat/completions", {"model": "late", "messages": MSGS}).status_code == 200,
        timeout=10,
        interval=0.2,
    )


# --- #18.3 rejected calls cannot fill the disk ---------------------------------------------------


def test_rejected_calls_store_small_records(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_config(deployments(fake_upstream), require_keys=True))
    db = make_config.db_path
    big = {
        "model": "chat",
        "messages": [{"role": "user", "content": "x" * 600_000}],
        "metadata": {f"k{i}-{'y' * 100}": "v" * 30_000 for i in range(40)},
        "user": "u" * 10_000,
    }
    raw = orjson.dumps(big)
    assert len(raw) > 1_800_000
    post(server, "/v1/chat/completions", {"model": "chat", "messages": []})  # the database files exist
    server.wait_for_records("chat", 1)
    before = db_bytes(db)
    for _ in range(50):
        error_of(post(server, "/v1/chat/completions", raw), 401, "invalid_api_key")
    recs = server.wait_for_records("chat", 51, status="error")
    added = db_bytes(db) - before
    print(f"50 rejected requests of {len(raw):,} bytes added {added:,} bytes to the database")
    # Before: the 1 MiB cap of stored bodies plus the whole metadata, ~2 MB a request. Now 4 KiB of
    # body and metadata within OpenAI's limits (16 keys of 64 + 512 characters); the rest is the
    # SQLite WAL's page images (~30 KB a request measured).
    assert added < 50 * 64 * 1024, added
    rec = server.record(recs[0]["id"])
    assert rec["metadata"]["bodies_truncated"] is True and rec["metadata"]["metadata_truncated"] is True
    assert len(orjson.dumps(rec["metadata"])) < 16 * 1024
    assert len(orjson.dumps(rec["request"])) < 5 * 1024


def test_rejected_calls_beyond_the_budget_get_429_and_cheap_records(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_config(deployments(fake_upstream), rejected_per_minute=5))
    body = {"model": "chat", "messages": MSGS, "metadata": {"note": "n" * 300}}
    statuses = []
    for i in range(8):
        resp = post(
            server, "/v1/chat/completions", body, headers={"content-type": "text/plain", "x-modelmeter-tags": f"rj{i}"}
        )
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            error_of(resp, 429, "too_many_rejected_requests")
            assert int(resp.headers["retry-after"]) >= 1
    assert statuses == [415] * 5 + [429] * 3
    assert post(server, "/v1/chat/completions", {"model": "chat", "messages": MSGS}).status_code == 200
    recs = {r["tags"][0]: r for r in server.wait_for_records("chat", 8, status="error")}
    assert set(recs) == {f"rj{i}" for i in range(8)}  # every one recorded
    assert server.record(recs["rj0"]["id"])["request"]["metadata"] == {"note": "n" * 300}
    cheap = server.record(recs["rj7"]["id"])
    assert cheap["http_status"] == 429 and cheap["request"] is None and cheap["metadata"] in (None, {})


# --- #18.11 a deployment pointing at the gateway itself ------------------------------------------


def test_a_deployment_pointing_at_the_gateway_is_refused(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Callable[..., ServerProcess]
) -> None:
    port = free_port()
    deps = [*deployments(fake_upstream), {"name": "loop", "model": "loop", "api_base": f"http://127.0.0.1:{port}/v1"}]
    server = start_server(make_config(deps), port=port)
    with pytest.raises(openai.APIStatusError) as exc:
        sdk(server, timeout=10).chat.completions.create(model="loop", messages=MSGS)  # type: ignore[arg-type]
    assert exc.value.status_code == 508 and exc.value.code == "loop_detected"
    assert "points at this gateway" in exc.value.message
    recs = server.wait_for_records("loop", 2)
    assert [r["http_status"] for r in recs] == [508, 508] and all(r["retries"] == 0 for r in recs)
    # Recorded in order: once a later call is stored, no third loop record is on its way.
    assert post(server, "/v1/chat/completions", {"model": "chat", "messages": MSGS}).status_code == 200
    server.wait_for_records("chat", 1)
    assert len(server.records("loop")) == 2


# --- #18.13 other pages and other hosts ----------------------------------------------------------


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_content_types_are_refused(
    server: ServerProcess, fake_upstream: FakeUpstream, ctype: str | None
) -> None:
    raw = orjson.dumps({"model": "chat", "messages": MSGS})
    headers = {"content-type": ctype} if ctype else {}
    resp = request(server, "POST", "/v1/chat/completions", raw, headers)
    err = error_of(resp, 415, "unsupported_media_type")
    assert "application/json" in err["message"]
    [rec] = server.wait_for_records("chat", 1, status="error")
    assert rec["http_status"] == 415
    ok = post(server, "/v1/chat/completions", raw, {"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


def test_loopback_server_answers_only_loopback_host_names(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_config(deployments(fake_upstream)), args=("--no-auth",))
    body = orjson.dumps({"model": "chat", "messages": MSGS})
    for host in ("evil.example", f"rebind.attacker.test:{server.port}", "127.0.0.1.nip.io"):
        error_of(post(server, "/v1/chat/completions", body, {"host": host}), 421, "misdirected_request")
        error_of(request(server, "GET", "/api/deployments", headers={"host": host}), 421, "misdirected_request")
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}", "localhost"):
        resp = post(server, "/v1/chat/completions", body, {"host": host})
        assert resp.status_code == 200, (host, resp.text)
        assert request(server, "GET", "/api/deployments", headers={"host": host}).status_code == 200
