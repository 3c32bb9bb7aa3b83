"""A real OTLP/HTTP receiver for tests: ``/v1/traces`` and ``/v1/metrics`` decoded with
``opentelemetry-proto``, as a collector would (``with OtlpReceiver() as otlp: otlp.endpoint``).

Spans come back as plain dicts (hex ids, attributes by key); metrics as each histogram data point's
latest cumulative state per (metric, attributes).
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def value_of(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value_of(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(v.kvlist_value.values)
    return getattr(v, kind) if kind else None


def attributes_of(kvs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.points: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []  # path and headers of every export
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
                    )
                    if self.path == "/v1/traces":
                        receiver._traces(body)
                        answer = ExportTraceServiceResponse().SerializeToString()
                    elif self.path == "/v1/metrics":
                        receiver._metrics(body)
                        answer = ExportMetricsServiceResponse().SerializeToString()
                    else:
                        self.send_error(404)
                        return
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _traces(self, body: bytes) -> None:
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            resource = attributes_of(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.spans.append(
                        {
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex() or None,
                            "name": s.name,
                            "kind": s.kind,
                            "start_ns": s.start_time_unix_nano,
                            "end_ns": s.end_time_unix_nano,
                            "status": s.status.code,
                            "status_message": s.status.message,
                            "attributes": attributes_of(s.attributes),
                            "resource": resource,
                            "scope": ss.scope.name,
                        }
                    )

    def _metrics(self, body: bytes) -> None:
        req = ExportMetricsServiceRequest.FromString(body)
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.WhichOneof("data") != "histogram":
                        continue
                    for p in m.histogram.data_points:
                        attrs = attributes_of(p.attributes)
                        key = (m.name, tuple(sorted(attrs.items())))
                        self.points[key] = {
                            "name": m.name,
                            "unit": m.unit,
                            "attributes": attrs,
                            "sum": p.sum,
                            "count": p.count,
                        }

    def span_list(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.spans)

    def metric_points(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.points.values() if p["name"] == name]

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
