"""OpenTelemetry export end to end (issue 16 item 4): the gateway as a subprocess with ``[otel]``
pointing at a real OTLP/HTTP receiver (tests/fakes/otlp.py, protobuf decoded with
opentelemetry-proto); calls through the official SDKs; each span's GenAI attributes equal the stored
record, the metrics' sums equal the records', the caller's trace is joined, and the upstream gets
the gateway span's traceparent. With export off, no traceparent goes upstream."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes import doors as fk
from tests.fakes.otlp import OtlpReceiver
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, free_port, sqlite_url, wait_for, write_config

RUN = uuid.uuid4().hex[:8]
OTLP_SECRET = f"otlp-key-{RUN}"
MSG = [{"role": "user", "content": "Say hello."}]


def traceparent() -> tuple[str, str, str]:
    trace, span = f"{random.getrandbits(128):032x}", f"{random.getrandbits(64):016x}"
    return f"00-{trace}-{span}-01", trace, span


def _config(tmp: Path, base: str, otel: str | None) -> Path:
    deployments: list[dict[str, Any]] = [
        {"name": "chat", "model": "fake-model", "api_base": base},
        {"name": "chat-fail", "model": "fail-400", "api_base": base, "max_retries": 0},
        {"name": "claude", "model": f"claude-{RUN}-cached", "provider": "anthropic", "api_base": base},
    ]
    config = write_config(tmp / "modelmeter.toml", database=sqlite_url(tmp / "mm.db"), deployments=deployments)
    if otel is not None:
        with config.open("a") as f:
            f.write(otel)
    return config


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def server(
    fake_upstream: FakeUpstream, otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("otel")
    otel = (
        f'\n[otel]\nendpoint = "{otlp.endpoint}"\nservice_name = "mm-{RUN}"\ncapture_content = true\n'
        f'export_interval_s = 0.5\nheaders = {{"x-otlp-key" = "{OTLP_SECRET}"}}\n'
    )
    with ServerProcess(_config(tmp, fake_upstream.base_url, otel), log_dir=tmp / "server") as srv:
        yield srv


def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=20)


def span_of(otlp: OtlpReceiver, record_id: str) -> dict[str, Any]:
    spans = wait_for(
        lambda: [s for s in otlp.span_list() if s["attributes"].get("modelmeter.record_id") == record_id],
        15,
        message=f"the span of record {record_id}",
    )
    assert len(spans) == 1
    return dict(spans[0])


def assert_span_is_record(span: dict[str, Any], rec: dict[str, Any], port: int) -> None:
    a = span["attributes"]
    op = {"chat": "chat", "messages": "chat", "responses": "chat", "completion": "text_completion"}
    assert span["name"] == f"{op[rec['call_type']]} {rec['model']}"
    assert span["kind"] == 3  # SPAN_KIND_CLIENT
    assert span["resource"]["service.name"] == f"mm-{RUN}"
    assert a["gen_ai.operation.name"] == op[rec["call_type"]]
    assert a["gen_ai.provider.name"] == rec["provider"]
    assert a["gen_ai.request.model"] == rec["model"]
    assert a.get("gen_ai.response.model") == rec["model_id"]
    assert a["gen_ai.usage.input_tokens"] == rec["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == rec["completion_tokens"]
    assert a.get("gen_ai.usage.cache_read.input_tokens", 0) == rec["cached_tokens"]
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == port
    assert a["http.response.status_code"] == rec["http_status"]
    # the span lasts exactly what the record says (microseconds)
    assert span["end_ns"] - span["start_ns"] == pytest.approx(rec["latency_ms"] * 1e6, abs=2000)
    if rec["status"] == "success":
        assert "error.type" not in a and span["status"] == 0  # STATUS_CODE_UNSET
        assert a["gen_ai.response.id"] == rec["response"]["id"]
    else:
        assert a["error.type"] == str(rec["http_status"])
        assert span["status"] == 2 and span["status_message"] == rec["error"]  # STATUS_CODE_ERROR
        assert "gen_ai.response.id" not in a


def test_spans_equal_records_and_join_the_callers_trace(
    server: ServerProcess, otlp: OtlpReceiver, fake_upstream: FakeUpstream
) -> None:
    header, trace, caller_span = traceparent()
    raw = oai(server).chat.completions.with_raw_response.create(
        model="chat", messages=MSG, extra_headers={"traceparent": header}
    )
    upstream = fake_upstream.stats()["last_by_path"]["/v1/chat/completions"]["headers"]
    rid = raw.headers["x-request-id"]
    rows = wait_for(lambda: [r for r in server.records("chat") if r["request_id"] == rid], 10)
    rec = server.record(rows[0]["id"])
    span = span_of(otlp, rec["id"])
    assert_span_is_record(span, rec, fake_upstream.port)
    assert span["trace_id"] == trace and span["parent_span_id"] == caller_span  # a child of the caller's
    assert upstream["traceparent"] == f"00-{trace}-{span['span_id']}-01"  # the upstream's parent: our span
    a = span["attributes"]
    assert '"content":"Say hello."' in a["gen_ai.input.messages"]  # capture_content = true
    assert rec["response"]["choices"][0]["message"]["content"] in a["gen_ai.output.messages"]
    exports = [r for r in otlp.requests if r["path"] == "/v1/traces"]
    assert exports and all(r["headers"]["x-otlp-key"] == OTLP_SECRET for r in exports)


def test_streamed_chat_without_traceparent_starts_a_trace(
    server: ServerProcess, otlp: OtlpReceiver, fake_upstream: FakeUpstream
) -> None:
    stream = oai(server).chat.completions.create(
        model="chat", messages=MSG, stream=True, stream_options={"include_usage": True}, max_tokens=5
    )
    chunk_id = {c.id for c in stream}.pop()
    upstream = fake_upstream.stats()["last_by_path"]["/v1/chat/completions"]["headers"]
    rows = wait_for(lambda: [r for r in server.records("chat") if r["request_id"] == chunk_id], 10)
    rec = server.record(rows[0]["id"])
    span = span_of(otlp, rec["id"])
    assert rec["stream"] and rec["completion_tokens"] == 5
    assert_span_is_record(span, rec, fake_upstream.port)
    assert span["parent_span_id"] is None
    assert span["attributes"]["gen_ai.request.max_tokens"] == 5
    assert upstream["traceparent"] == f"00-{span['trace_id']}-{span['span_id']}-01"


def test_error_call_has_error_type(server: ServerProcess, otlp: OtlpReceiver, fake_upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(server).chat.completions.create(model="chat-fail", messages=MSG)
    rid = info.value.response.headers["x-request-id"]
    rows = wait_for(lambda: [r for r in server.records("chat-fail") if r["request_id"] == rid], 10)
    rec = server.record(rows[0]["id"])
    assert rec["status"] == "error" and rec["http_status"] == 400
    assert_span_is_record(span_of(otlp, rec["id"]), rec, fake_upstream.port)


def test_messages_call_has_cache_tokens(server: ServerProcess, otlp: OtlpReceiver, fake_upstream: FakeUpstream) -> None:
    header, trace, caller_span = traceparent()
    client = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0, timeout=20)
    raw = client.messages.with_raw_response.create(
        model="claude",
        max_tokens=7,
        messages=MSG,  # type: ignore[arg-type]
        extra_headers={"traceparent": header},
    )
    rid = raw.headers["x-request-id"]
    rows = wait_for(lambda: [r for r in server.records("claude") if r["request_id"] == rid], 10)
    rec = server.record(rows[0]["id"])
    span = span_of(otlp, rec["id"])
    assert_span_is_record(span, rec, fake_upstream.port)
    a = span["attributes"]
    assert a["gen_ai.usage.cache_read.input_tokens"] == fk.CACHE_READ == rec["cached_tokens"]
    written = {c["component"]: c["tokens"] for c in rec["cost_breakdown"]}
    assert a["gen_ai.usage.cache_creation.input_tokens"] == fk.CACHE_WRITE_5M + fk.CACHE_WRITE_1H
    assert written.get("cache_write", 0) + written.get("cache_write_1h", 0) == fk.CACHE_WRITE_5M + fk.CACHE_WRITE_1H
    assert span["trace_id"] == trace and span["parent_span_id"] == caller_span
    upstream = fake_upstream.stats()["last_by_path"]["/v1/messages"]["headers"]
    assert upstream["traceparent"] == f"00-{trace}-{span['span_id']}-01"


def test_metrics_sum_to_the_records(server: ServerProcess, otlp: OtlpReceiver) -> None:
    """Every record of this server (this test's calls, and the other tests' if they ran) is in the
    metrics exactly once."""
    client = oai(server)
    list(client.chat.completions.create(model="chat", messages=MSG, stream=True, max_tokens=4))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chat-fail", messages=MSG)
    server.wait_for_records("chat-fail", 1)
    records = wait_for(
        lambda: (
            (rs := [server.record(r["id"]) for d in ("chat", "chat-fail", "claude") for r in server.records(d)])
            and any(r["stream"] and r["completion_tokens"] == 4 for r in rs)
            and rs
        ),
        10,
    )

    def sums(name: str, **match: Any) -> tuple[float, int]:
        points = [p for p in otlp.metric_points(name) if all(p["attributes"].get(k) == v for k, v in match.items())]
        return sum(p["sum"] for p in points), sum(p["count"] for p in points)

    inputs = sum(r["prompt_tokens"] for r in records)
    outputs = sum(r["completion_tokens"] for r in records)
    wait_for(lambda: sums("gen_ai.client.token.usage", **{"gen_ai.token.type": "output"})[0] == outputs, 15)
    assert sums("gen_ai.client.token.usage", **{"gen_ai.token.type": "input"})[0] == inputs
    wait_for(lambda: sums("gen_ai.client.operation.duration")[1] == len(records), 15)
    total_s, _ = sums("gen_ai.client.operation.duration")
    assert total_s == pytest.approx(sum(r["latency_ms"] for r in records) / 1000, abs=1e-5 * len(records))
    errors = [p for p in otlp.metric_points("gen_ai.client.operation.duration") if "error.type" in p["attributes"]]
    assert sum(p["count"] for p in errors) == sum(r["status"] == "error" for r in records)
    streamed = [r for r in records if r["stream"] and r["status"] == "success"]
    assert sums("gen_ai.server.time_to_first_token")[0] == pytest.approx(
        sum(r["ttft_ms"] for r in streamed) / 1000, abs=1e-5 * len(records)
    )
    tpot = [(r["latency_ms"] - r["ttft_ms"]) / 1000 / (r["completion_tokens"] - 1) for r in streamed]
    assert sums("gen_ai.server.time_per_output_token")[0] == pytest.approx(sum(tpot), abs=1e-5 * len(records))


def test_export_off_sends_no_traceparent(fake_upstream: FakeUpstream, tmp_path: Path, otlp: OtlpReceiver) -> None:
    with ServerProcess(_config(tmp_path, fake_upstream.base_url, None), log_dir=tmp_path / "server") as srv:
        header, _, _ = traceparent()
        oai(srv).chat.completions.create(model="chat", messages=MSG, extra_headers={"traceparent": header})
        upstream = fake_upstream.stats()["last_by_path"]["/v1/chat/completions"]["headers"]
        assert "traceparent" not in upstream
        rec = srv.wait_for_records("chat", 1)[0]
    assert not [s for s in otlp.span_list() if s["attributes"]["modelmeter.record_id"] == rec["id"]]


def test_collector_down_costs_no_call_and_no_slow_stop(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    otel = f'\n[otel]\nendpoint = "{dead}"\nexport_interval_s = 0.5\n'
    srv = ServerProcess(_config(tmp_path, fake_upstream.base_url, otel), log_dir=tmp_path / "server").start()
    try:
        client = oai(srv)
        for _ in range(5):
            client.chat.completions.create(model="chat", messages=MSG)
        assert len(srv.wait_for_records("chat", 5)) == 5
    finally:
        t = time.monotonic()
        assert srv.stop() == 0
    assert time.monotonic() - t < 15  # the export gives up on the last spans after 5 s


PAGES = ("/", "/alerts", "/models/chat", "/docs", "/openapi.json", "/metrics", "/healthz", "/readyz")
API = ("/api/deployments", "/api/deployments/chat", "/api/alerts", "/api/keys", "/api/user-budgets")


def test_otlp_headers_reach_the_collector_and_nothing_else(server: ServerProcess, otlp: OtlpReceiver) -> None:
    """The [otel] headers (an API key, typically) are sent with every export and shown nowhere: not
    in a page, an API answer or the server's log (its start-up lines included)."""
    oai(server).chat.completions.create(model="chat", messages=MSG)
    wait_for(lambda: any(r["headers"].get("x-otlp-key") == OTLP_SECRET for r in otlp.requests), 15)
    seen = [server.api("GET", path) for path in (*PAGES, *API)]
    assert all(status == 200 for status, _ in seen), [(p, s) for p, (s, _) in zip((*PAGES, *API), seen, strict=True)]
    text = repr(seen) + server.stdout + server.stderr
    assert OTLP_SECRET not in text
    assert "modelmeter: gateway at" in server.stderr  # the start-up log was read


def test_otlp_headers_stay_out_of_the_log_when_the_collector_refuses(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A collector answering 401 (a wrong key), at debug level: the export's failures are logged,
    the key never is."""
    refused: list[str] = []

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            refused.append(self.headers.get("x-otlp-key", ""))
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(401)
            self.send_header("content-length", "12")
            self.end_headers()
            self.wfile.write(b"unauthorized")

        def log_message(self, *args: Any) -> None:
            pass

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    otel = (
        f'\n[otel]\nendpoint = "http://127.0.0.1:{collector.server_address[1]}"\nexport_interval_s = 0.5\n'
        f'headers = {{"x-otlp-key" = "{OTLP_SECRET}"}}\n'
    )
    try:
        config = _config(tmp_path, fake_upstream.base_url, otel)
        with ServerProcess(config, log_dir=tmp_path / "server", args=["--log-level", "debug"]) as srv:
            oai(srv).chat.completions.create(model="chat", messages=MSG)
            wait_for(lambda: len(refused) >= 2, 20, message="exports to reach the refusing collector")
            seen = [srv.api("GET", path) for path in (*PAGES, *API)]
        log = srv.stdout + srv.stderr
    finally:
        collector.shutdown()
        collector.server_close()
    assert set(refused) == {OTLP_SECRET}  # sent, and refused
    assert "401" in log  # the failures are in the log ...
    assert OTLP_SECRET not in log and OTLP_SECRET not in repr(seen)  # ... the key is not
