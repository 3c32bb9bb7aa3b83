"""``python -m modelmeter.otel.receiver`` (the README's offline OTLP endpoint): what the official
SDK's OTLP/HTTP exporters send is printed decoded, one JSON line per span and per metric point, and
the exporter's headers (an API key, typically) are not printed."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from tests.helpers import http_json

from modelmeter.otel.receiver import make_server

SECRET = "otlp-key-not-to-be-printed"


@pytest.fixture
def receiver() -> Iterator[tuple[str, io.StringIO]]:
    out = io.StringIO()
    server = make_server("127.0.0.1", 0, out)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", out
    server.shutdown()
    server.server_close()


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_spans_and_metric_points_are_printed_decoded(receiver: tuple[str, io.StringIO]) -> None:
    base, out = receiver
    resource = Resource.create({"service.name": "mm-test"})
    headers = {"x-api-key": SECRET}
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=headers))
    )
    with tracer_provider.get_tracer("t").start_as_current_span("chat gpt", kind=SpanKind.CLIENT) as span:
        span.set_attribute("gen_ai.usage.input_tokens", 12)
        span.set_attribute("gen_ai.response.finish_reasons", ["stop"])
        span.set_status(Status(StatusCode.ERROR))
        ids = span.get_span_context()
    tracer_provider.shutdown()
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics", headers=headers))
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    hist = meter_provider.get_meter("m").create_histogram("gen_ai.client.token.usage")
    hist.record(12, {"gen_ai.token.type": "input"})
    hist.record(30, {"gen_ai.token.type": "input"})
    meter_provider.force_flush()
    meter_provider.shutdown()

    got = lines(out)
    span_line = next(g for g in got if "span" in g)
    assert span_line["span"] == "chat gpt" and span_line["service"] == "mm-test" and span_line["kind"] == "client"
    assert span_line["trace_id"] == f"{ids.trace_id:032x}" and span_line["span_id"] == f"{ids.span_id:016x}"
    assert span_line["parent_span_id"] is None and span_line["status"] == "error"
    assert span_line["attributes"] == {"gen_ai.usage.input_tokens": 12, "gen_ai.response.finish_reasons": ["stop"]}
    assert span_line["end_ns"] >= span_line["start_ns"] > 0
    point = next(g for g in got if g.get("metric") == "gen_ai.client.token.usage")
    assert point == {
        "metric": "gen_ai.client.token.usage",
        "type": "histogram",
        "attributes": {"gen_ai.token.type": "input"},
        "count": 2,
        "sum": 42.0,
    }
    assert SECRET not in out.getvalue()


def test_not_otlp_is_a_clear_error(receiver: tuple[str, io.StringIO]) -> None:
    base, out = receiver
    status, body = http_json("POST", f"{base}/v1/traces", b"{not protobuf")
    assert status == 400 and "not an OTLP protobuf body" in str(body)
    assert http_json("POST", f"{base}/v1/logs", b"")[0] == 404
    assert out.getvalue() == ""
