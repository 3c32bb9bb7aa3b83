"""The GenAI semconv mapping of a finished call (otel/attributes.py, content.py), the traceparent
parsing (otel/context.py) and the [otel] settings, without any exporter."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelmeter.config import ConfigError, Deployment, _from_toml
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import CallRecord, finish
from modelmeter.metering.usage import Usage
from modelmeter.otel.attributes import server_of, span_attributes
from modelmeter.otel.context import parse_traceparent, start_trace
from modelmeter.otel.settings import OtelSettings

DEP = Deployment(name="claude", model="claude-x", provider="anthropic", api_base="https://api.example.com/v1")


def record(**kw: Any) -> CallRecord:
    base: dict[str, Any] = dict(id="r1", deployment=DEP, model="claude", call_type="messages", start=1000.0)
    rec = CallRecord(**{**base, **kw})
    rec.end = rec.start + 0.25
    rec.latency_ms = 250.0
    return rec


def attrs(rec: CallRecord, capture: bool = False) -> dict[str, Any]:
    return span_attributes(rec, finish(rec, Pricer()), capture)


def test_messages_call_with_cache_tokens() -> None:
    rec = record(
        usage=Usage(421, 7, 428, 300, 0, 80, True, 40),
        model_id="claude-x-2025",
        request_body={
            "model": "claude",
            "max_tokens": 7,
            "temperature": 0.5,
            "messages": [{"role": "user", "content": "hi"}],
        },
        response_body={"id": "msg_1", "stop_reason": "end_turn", "content": [{"type": "text", "text": "yo"}]},
    )
    a = attrs(rec)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == "claude" and a["gen_ai.response.model"] == "claude-x-2025"
    assert a["gen_ai.response.id"] == "msg_1"
    assert a["gen_ai.usage.input_tokens"] == 421 and a["gen_ai.usage.output_tokens"] == 7
    assert a["gen_ai.usage.cache_read.input_tokens"] == 300
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 120
    assert a["gen_ai.request.max_tokens"] == 7 and a["gen_ai.request.temperature"] == 0.5
    assert a["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert a["server.address"] == "api.example.com" and a["server.port"] == 443
    assert "error.type" not in a
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a  # content is opt-in


def test_content_when_asked() -> None:
    rec = record(
        request_body={
            "system": "be brief",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        },
        response_body={"id": "m", "stop_reason": "end_turn", "content": [{"type": "text", "text": "yo"}]},
        usage=Usage(3, 1, 4, reported=True),
    )
    a = attrs(rec, capture=True)
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
    ]
    assert json.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "yo"}], "finish_reason": "end_turn"}
    ]


@pytest.mark.parametrize(
    ("call_type", "op"),
    [("chat", "chat"), ("completion", "text_completion"), ("embedding", "embeddings"), ("responses", "chat")],
)
def test_operation_names(call_type: str, op: str) -> None:
    rec = record(call_type=call_type, usage=Usage(2, 0, 2, reported=True))
    a = attrs(rec)
    assert a["gen_ai.operation.name"] == op
    assert ("gen_ai.usage.output_tokens" in a) is (call_type != "embedding")


def test_failure_has_error_type_and_no_response_id() -> None:
    rec = record(status="error", http_status=502, error="upstream broke", response_body={"id": "x", "error": {}})
    a = attrs(rec)
    assert a["error.type"] == "502" and "gen_ai.response.id" not in a
    assert a["http.response.status_code"] == 502


def test_server_of() -> None:
    assert server_of("http://10.0.0.5:8080/v1") == ("10.0.0.5", 8080)
    assert server_of("http://vllm/v1") == ("vllm", 80)
    assert server_of(None) == (None, None)


def test_traceparent() -> None:
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert parse_traceparent(tp) == (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True)
    for bad in ("", "junk", tp.upper(), "00-" + "0" * 32 + "-b7ad6b7169203331-01", tp + "-extra", "ff" + tp[2:]):
        assert parse_traceparent(bad) is None, bad
    assert parse_traceparent("01" + tp[2:] + "-future") is not None  # later versions: the first fields
    child = start_trace(tp.encode())
    assert child.trace_id == 0x0AF7651916CD43DD8448EB211C80319C and child.parent_span_id == 0xB7AD6B7169203331
    assert child.traceparent() == f"00-0af7651916cd43dd8448eb211c80319c-{child.span_id:016x}-01"
    assert start_trace(tp[:-2] + "00").traceparent().endswith("-00")  # the caller's sampling decision stays
    root = start_trace(None)
    assert root.parent_span_id is None and root.trace_id != 0


def test_settings() -> None:
    assert not _from_toml({}).otel.enabled
    s = _from_toml({"otel": {"endpoint": "http://collector:4318/", "headers": {"x-key": "s3"}}}).otel
    assert s == OtelSettings("http://collector:4318", {"x-key": "s3"})
    assert s.public()["headers"] == ["x-key"]  # never the value
    for bad in ({"endpoint": "collector:4318"}, {"nope": 1}, {"headers": {"x": 1}}, {"capture_content": "yes"}):
        with pytest.raises(ConfigError):
            _from_toml({"otel": bad})


def test_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from modelmeter.config import load_settings

    config = tmp_path / "m.toml"
    config.write_text('[otel]\nendpoint = "http://file:4318"\n')
    assert load_settings(config).otel.endpoint == "http://file:4318"
    monkeypatch.setenv("MODELMETER_OTEL_ENDPOINT", "https://env.example:4318/")
    assert load_settings(config).otel.endpoint == "https://env.example:4318"
    monkeypatch.setenv("MODELMETER_OTEL_ENDPOINT", "")
    assert not load_settings(config).otel.enabled
    monkeypatch.setenv("MODELMETER_OTEL_ENDPOINT", "not a url")
    with pytest.raises(ConfigError):
        load_settings(config)
