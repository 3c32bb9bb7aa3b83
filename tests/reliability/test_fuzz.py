"""Fuzzing the API and the gateway of a real server: no 5xx, no crash, nothing recorded wrongly.

* ``/api`` and the health/metrics routes: schemathesis, from the server's own OpenAPI document,
  with the admin key. Left out: the live ``/events`` stream (it never ends) and
  ``POST /api/deployments``, whose generated ``api_base`` could make the reachability probe reach
  beyond loopback; that one is fuzzed here with loopback-only URLs instead.
* ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``: hypothesis bodies with random
  types for every field the gateway reads, deep nesting, invalid UTF-8, lone surrogates, and wrong
  content types; plus a few huge bodies. Each answer must be a well-formed non-5xx, and a request
  is recorded iff its body is a JSON object naming a deployment (checked one for one by tag).

Afterwards the server still answers, a good request still works and is recorded, and its log holds
no traceback. The number of examples is bounded so the module runs in well under a minute.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ADMIN_HEADERS, ServerProcess, closed_port_url, sqlite_url, wait_for, write_config
from tests.reliability.support import TAG_HEADER, count_records, deployments, stored_records, tag_of

pytestmark = pytest.mark.timeout(180)

EXAMPLES = int(os.environ.get("MODELMETER_FUZZ_EXAMPLES", "40"))  # per /api operation
V1_EXAMPLES = int(os.environ.get("MODELMETER_FUZZ_V1_EXAMPLES", "300"))
MAX_BODY = 2 * 1024 * 1024


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, database=None, print_blob=True, suppress_health_check=list(HealthCheck)
    )


# Only well-behaved upstream deployments: any 5xx is then the gateway's own.
GOOD = ("chat", "acme", "emb")


def _server(tmp: Path, fake: FakeUpstream) -> ServerProcess:
    deps = [d for d in deployments(fake.base_url) if d["name"] in GOOD]
    config = write_config(
        tmp / "modelmeter.toml", database=sqlite_url(tmp / "mm.db"), max_body_bytes=MAX_BODY, deployments=deps
    )
    return ServerProcess(config, log_dir=tmp / "server")


def to_json(value: Any) -> bytes:
    """orjson, or Python's json for what orjson will not write (integers beyond 64 bits; NaN)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()


def _tracebacks(server: ServerProcess, allowed: tuple[str, ...] = ()) -> list[str]:
    """The tracebacks in the server's log that go through none of the ``allowed`` files."""
    blocks = server.stderr.split("Traceback (most recent call last):")[1:]
    return [b[-1500:] for b in blocks if not any(f"modelmeter/{a}" in b for a in allowed)]


# --- /api: schemathesis --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with _server(tmp_path_factory.mktemp("fuzz-api"), fake_upstream) as server:
        yield server
        assert server.api("GET", "/healthz")[0] == 200
        assert not _tracebacks(server), _tracebacks(server)[:3]


@pytest.fixture(scope="module")
def api_schema(api_server: ServerProcess) -> Any:
    return schemathesis.openapi.from_url(f"{api_server.url}/openapi.json", headers=ADMIN_HEADERS)


# (Filters go on the lazy schema: with from_fixture, those applied inside the fixture are ignored.)
schema = (
    schemathesis.pytest.from_fixture("api_schema")
    .exclude(path_regex=r".*/events$")
    .exclude(method="POST", path="/api/deployments")
)


@schema.parametrize()
@fuzz_settings(EXAMPLES)
def test_api_operations(case: Any, api_server: ServerProcess) -> None:
    response = case.call(headers=ADMIN_HEADERS, timeout=20)
    assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text[:500])
    if response.status_code != 204 and response.content:
        assert (
            "json" in response.headers.get("content-type", [""])[0]
            or case.path == "/metrics"
            or case.path.endswith("/export")
        ), response.headers


def test_runs_page_before_beyond_bigint(api_server: ServerProcess) -> None:
    """Was a 500 (SQLite OverflowError in storage/runs.py list_runs); fixed by clamping."""
    for before in (2**63, 2**70, -(2**63) - 1):
        status, body = api_server.api("GET", f"/api/runs?before={before}")
        assert status == 200, body


@pytest.mark.parametrize(
    "body", [{"budget_usd": 1e7}, {"rpm": 2**63}, {"tpm": 2**63}], ids=["budget-10M-usd", "rpm", "tpm"]
)
def test_key_limits_beyond_bigint_are_refused(api_server: ServerProcess, body: dict[str, Any]) -> None:
    alias = f"big-{next(iter(body))}"
    status, answer = api_server.api("POST", "/api/keys", to_json({"alias": alias, **body}))
    assert status == 400, answer


@pytest.mark.parametrize(
    "body",
    [{"params": {"n": 2**64}}, {"report": {"n": -(2**63) - 1}}, {"created_us": 2**63}],
    ids=["params", "report", "created_us"],
)
def test_run_numbers_beyond_bigint_are_refused(api_server: ServerProcess, body: dict[str, Any]) -> None:
    status, answer = api_server.api(
        "POST", "/api/runs", to_json({"id": f"big-{next(iter(body))}", "kind": "bench", **body})
    )
    assert status == 400, answer


_DEP_FIELDS = (
    "name",
    "api_base",
    "model",
    "provider",
    "api_key_env",
    "price",
    "threads",
    "timeout",
    "connect_timeout",
    "store_bodies",
    "source",
    "local",
    "nonsense",
)
_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# An api_base is either on loopback (nothing listens there) or junk that is no http(s) URL.
_api_base = st.sampled_from([closed_port_url(), "http://127.0.0.1:9/v1", "http://localhost:1/v1"]) | _junk.filter(
    lambda v: not (isinstance(v, str) and v.lower().lstrip().startswith("http"))
)
_definition = (
    st.fixed_dictionaries(
        {},
        optional={
            **{f: _junk for f in _DEP_FIELDS},
            "name": st.text(min_size=1, max_size=12) | _junk,
            "api_base": _api_base,
            "price": st.dictionaries(
                st.sampled_from(["input", "output", "cached_input", "bogus"]), _junk | st.floats(-1, 100), max_size=3
            )
            | _junk,
        },
    )
    | _junk
)


@fuzz_settings(EXAMPLES * 2)
@given(definition=_definition)
def test_api_add_deployment(api_server: ServerProcess, definition: Any) -> None:
    status, body = api_server.api("POST", "/api/deployments", to_json(definition))
    assert status in (201, 400, 409, 422), (definition, status, body)
    if status == 201:  # a run-time deployment on a closed loopback port: list it, then remove it
        assert api_server.api("GET", "/api/deployments")[0] == 200
        assert api_server.api("DELETE", f"/api/deployments/{body['name']}")[0] == 204


# --- /v1: hypothesis -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v1_server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with _server(tmp_path_factory.mktemp("fuzz-v1"), fake_upstream) as server:
        yield server


class Client:
    """One keep-alive connection, reopened when the server closes it; records what it sent."""

    def __init__(self, server: ServerProcess) -> None:
        self.port = server.port
        self.conn: http.client.HTTPConnection | None = None
        self.counter = itertools.count()
        self.expected: set[str] = set()  # tags that must have a record
        self.sent: set[str] = set()
        self.statuses: Counter[int] = Counter()

    def post(
        self, path: str, raw: bytes, content_type: str | None = "application/json", method: str = "POST"
    ) -> tuple[int, bytes, str]:
        tag = f"fz-{next(self.counter)}"
        headers = {TAG_HEADER: tag, **({"content-type": content_type} if content_type else {})}
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=raw, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest):
                self.conn.close()
                self.conn = None  # a closed keep-alive connection: once more on a new one
                if attempt:
                    raise
        if resp.getheader("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        self.sent.add(tag)
        self.statuses[resp.status] += 1
        if method == "POST" and path in CALL_PATHS and names_deployment(raw) and len(raw) <= MAX_BODY:
            self.expected.add(tag)
        return resp.status, data, resp.getheader("content-type", "")


CALL_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")


def names_deployment(raw: bytes) -> bool:
    """The gateway records every request whose body is a JSON object naming a deployment."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and isinstance(body.get("model"), str) and body["model"] in GOOD


@pytest.fixture(scope="module")
def client(v1_server: ServerProcess) -> Iterator[Client]:
    c = Client(v1_server)
    yield c
    if c.conn is not None:
        c.conn.close()


def check_answer(path: str, status: int, data: bytes, ctype: str, what: Any) -> None:
    assert status < 500, (path, status, data[:500], what)
    if ctype.startswith("text/event-stream"):
        assert status == 200
        text = data.rstrip()
        assert text.endswith(b"data: [DONE]") or b'"error"' in text.rsplit(b"\n\n", 1)[-1], (data[-300:], what)
        return
    parsed = orjson.loads(data)  # every other answer is JSON
    if status >= 400:
        assert isinstance(parsed.get("error"), dict) and parsed["error"].get("message"), parsed
    else:
        assert isinstance(parsed, dict) and ("choices" in parsed or "data" in parsed), parsed


# Leaves of every JSON type, integers beyond 64 bits, strings with NULs, quotes and astral characters.
_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "\x00", "\\", '"', "\u2028", "𝔘", "tok0 tok1"])
)
_json = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)
_small_int = st.integers(-3, 40)  # max_tokens & co: the fake really generates that many tokens
_message = (
    st.fixed_dictionaries(
        {},
        optional={
            "role": st.sampled_from(["user", "system", "assistant", "tool"]) | _json,
            "content": st.text(max_size=200) | _json,
            "name": _json,
        },
    )
    | _json
)
_model = st.sampled_from(GOOD) | st.sampled_from(["", "nope", "CHAT", "chat ", "emb\x00"]) | _json
_fields: dict[str, Any] = {
    "messages": st.lists(_message, max_size=4) | _json,
    "prompt": st.text(max_size=100) | st.lists(st.text(max_size=10) | _small_int, max_size=4) | _json,
    "input": st.text(max_size=100) | st.lists(st.text(max_size=10) | _small_int, max_size=4) | _json,
    "stream": st.booleans() | _json,
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans() | _json}) | _json,
    "max_tokens": _small_int | _json.filter(lambda v: not isinstance(v, int) or v < 41),
    "max_completion_tokens": _small_int,
    "n": _small_int,
    "temperature": _json,
    "metadata": st.dictionaries(st.text(max_size=8), _json, max_size=3) | _json,
    "user": _json,
    "encoding_format": st.sampled_from(["float", "base64"]) | _json,
    "tools": _json,
}
_body = st.fixed_dictionaries({"model": _model}, optional=_fields) | _json


# Calls the upstream answers (the right model for the path, the required field well-formed) with
# random extras: these exercise the relay, the stream accounting and the storing of odd metadata.
_extras = st.fixed_dictionaries(
    {},
    optional={
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans() | _json, "other": _json}),
        "max_tokens": st.integers(1, 40),
        "temperature": _json,
        "user": _json,
        "tools": _json,
        "stop": _json,
        "metadata": st.dictionaries(st.text(max_size=8), _json, max_size=4)
        | st.fixed_dictionaries({"tags": st.lists(_leaf, max_size=25) | _leaf}),
        "n": st.integers(1, 3),
        "logprobs": _json,
        "seed": _json,
        "response_format": _json,
    },
)
_valid_calls = st.one_of(
    st.tuples(
        st.just("/v1/chat/completions"),
        st.fixed_dictionaries(
            {
                "model": st.just("chat"),
                "messages": st.lists(
                    st.fixed_dictionaries(
                        {
                            "role": st.sampled_from(["user", "system", "assistant"]),
                            "content": st.text(max_size=300)
                            | st.lists(
                                st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=50)}),
                                max_size=3,
                            ),
                        }
                    ),
                    min_size=1,
                    max_size=5,
                ),
            }
        ),
        _extras,
    ),
    st.tuples(
        st.just("/v1/completions"),
        st.fixed_dictionaries(
            {
                "model": st.just("acme"),
                "prompt": st.text(max_size=300)
                | st.lists(st.text(max_size=30), max_size=3)
                | st.lists(st.integers(0, 50_000), max_size=20),
            }
        ),
        _extras,
    ),
    st.tuples(
        st.just("/v1/embeddings"),
        st.fixed_dictionaries(
            {
                "model": st.just("emb"),
                "input": st.text(min_size=1, max_size=300)
                | st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=4),
            }
        ),
        _extras.map(lambda e: {k: v for k, v in e.items() if k != "stream"}),
    ),
)


@fuzz_settings(max(V1_EXAMPLES // 2, 20))
@given(call=_valid_calls)
def test_v1_valid_calls_with_random_extras(client: Client, call: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    path, body, extras = call
    body = {**extras, **body}
    status, data, rtype = client.post(path, to_json(body))
    check_answer(path, status, data, rtype, body)
    assert status in (200, 400), (status, data[:300], body)


def _nested(depth: int, model: str = "chat") -> bytes:
    inner = b"[" * depth + b"1" + b"]" * depth
    return b'{"model": "%s", "messages": [{"role": "user", "content": "x"}], "metadata": {"deep": %s}}' % (
        model.encode(),
        inner,
    )


_raw_bodies = st.one_of(
    st.binary(max_size=300),  # anything at all, mostly invalid UTF-8 and not JSON
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b'"chat"',
            b"{",
            b'{"model": "chat"',
            b"\xff\xfe\xfd",
            b'{"model": "chat", "messages": [{"role": "user", "content": "\xff\xfe"}]}',  # invalid UTF-8
            b'{"model": "chat", "messages": [{"role": "user", "content": "\\ud800"}]}',  # a lone surrogate
            b'{"model": "\\udfff", "input": "x"}',
            b'{"model": "emb", "input": "\\ud83d"}',
            b'{"model": "chat", "model": 5, "messages": []}',  # duplicate keys
            b'\xef\xbb\xbf{"model": "chat", "messages": [{"role": "user", "content": "bom"}]}',
            b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1e400}',
            b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 99999999999999999999}',
            b"model=chat&messages=hi",
        ]
    ),
    st.sampled_from([200, 253, 254, 255, 256, 600, 1023, 1024, 1025, 5000]).map(_nested),
    st.builds(
        lambda b, junk: orjson.dumps(b)[:-1] + junk,
        st.fixed_dictionaries({"model": st.sampled_from(GOOD)}),
        st.binary(max_size=20),
    ),  # a JSON object with trailing garbage
)
_content_type = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "",
        None,
        "application/json; charset=latin-1",
    ]
)


@fuzz_settings(V1_EXAMPLES)
@given(path=st.sampled_from(CALL_PATHS), body=_body, ctype=_content_type)
def test_v1_random_json(client: Client, path: str, body: Any, ctype: str | None) -> None:
    status, data, rtype = client.post(path, to_json(body), ctype)
    check_answer(path, status, data, rtype, body)


@fuzz_settings(max(V1_EXAMPLES // 3, 20))
@given(
    path=st.sampled_from((*CALL_PATHS, "/v1/models", "/v1/nope", "/v1/")),
    raw=_raw_bodies,
    ctype=_content_type,
    method=st.sampled_from(["POST", "POST", "POST", "PUT", "GET", "DELETE"]),
)
def test_v1_raw_bytes(client: Client, path: str, raw: bytes, ctype: str | None, method: str) -> None:
    status, data, rtype = client.post(path, raw, ctype, method=method)
    check_answer(path, status, data, rtype, raw[:200])


@pytest.mark.parametrize("size", [MAX_BODY // 2, MAX_BODY - 200, MAX_BODY + 1, 3 * MAX_BODY])
def test_v1_huge_bodies(client: Client, size: int) -> None:
    """A huge string in each field the gateway reads (within and beyond max_body_bytes)."""
    for path, field in (
        ("/v1/chat/completions", "messages"),
        ("/v1/completions", "prompt"),
        ("/v1/embeddings", "input"),
    ):
        text = "x" * size
        body = {"model": GOOD[("messages", "prompt", "input").index(field)], "max_tokens": 3}
        body[field] = [{"role": "user", "content": text}] if field == "messages" else text
        raw = orjson.dumps(body)
        status, data, rtype = client.post(path, raw)
        check_answer(path, status, data, rtype, f"{field} of {size} chars")
        assert (status == 413) == (len(raw) > MAX_BODY), (status, len(raw))
    status, data, rtype = client.post("/v1/chat/completions", orjson.dumps({"model": "x" * size}))
    check_answer("/v1/chat/completions", status, data, rtype, "huge model name")


def test_v1_still_serves_and_records_exactly(v1_server: ServerProcess, client: Client) -> None:
    """After the fuzzing: the server answers, a good call works and is recorded, every fuzz request
    that named a deployment has exactly one record and no other request has one."""
    assert v1_server.proc is not None and v1_server.proc.poll() is None, "the server died"
    assert v1_server.api("GET", "/healthz")[0] == 200
    good = orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": "still there?"}]})
    status, data, _ = client.post("/v1/chat/completions", good)
    assert status == 200, data
    assert orjson.loads(data)["choices"][0]["message"]["content"] == "tok0 tok1 tok2 tok3 tok4 tok5 tok6"
    db = str(v1_server.config.parent / "mm.db")
    wait_for(lambda: count_records(db) >= len(client.expected), 20, 0.1, "the fuzz records")
    rows = stored_records(db)
    tags = Counter(tag_of(r) for r in rows)
    assert all(n == 1 for n in tags.values()), [t for t, n in tags.items() if n > 1]
    missing, extra = client.expected - set(tags), set(tags) - client.expected
    assert not missing and not extra, (sorted(missing)[:10], sorted(extra)[:10])
    last = max(rows, key=lambda r: int(tag_of(r).split("-")[1]))
    assert last["status"] == "success" and last["completion_tokens"] == 7
    assert not _tracebacks(v1_server), _tracebacks(v1_server)[:3]
    print(
        f"\n[fuzz /v1] requests={len(client.sent)} recorded={len(rows)} "
        f"statuses={dict(sorted(client.statuses.items()))}"
    )
