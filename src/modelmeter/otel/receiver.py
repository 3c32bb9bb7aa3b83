"""A tiny OTLP/HTTP endpoint that prints what it receives, decoded: to try the export without a
collector or docker (``python -m modelmeter.otel.receiver --port 4318``).

One JSON line per span (name, ids in hex, times, status, attributes) and per metric data point
(name, attributes, count and sum of a histogram, or the value); request headers are not printed
(an exporter's headers often carry an API key). ``opentelemetry-proto`` comes with the OTLP
exporter, a runtime dependency. For trying things out, not for production: no TLS, no auth.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS = {0: "unset", 1: "ok", 2: "error"}
MAX_BODY = 64 * 1024 * 1024


def value_of(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value_of(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in kvs}


def spans(body: bytes) -> Iterator[dict[str, Any]]:
    req = ExportTraceServiceRequest.FromString(body)
    for rs in req.resource_spans:
        service = _attrs(rs.resource.attributes).get("service.name")
        for ss in rs.scope_spans:
            for s in ss.spans:
                yield {
                    "span": s.name,
                    "service": service,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex() or None,
                    "kind": _KINDS.get(s.kind, str(s.kind)),
                    "start_ns": s.start_time_unix_nano,
                    "end_ns": s.end_time_unix_nano,
                    "status": _STATUS.get(s.status.code, str(s.status.code)),
                    "attributes": _attrs(s.attributes),
                }


def points(body: bytes) -> Iterator[dict[str, Any]]:
    req = ExportMetricsServiceRequest.FromString(body)
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    continue
                for p in getattr(m, kind).data_points:
                    out: dict[str, Any] = {"metric": m.name, "type": kind, "attributes": _attrs(p.attributes)}
                    if kind in ("histogram", "exponential_histogram"):
                        out.update(count=p.count, sum=p.sum)
                    else:
                        out["value"] = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                    yield out


def make_server(host: str, port: int, out: TextIO = sys.stdout) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("content-length") or 0)
            if not 0 <= size <= MAX_BODY:
                self.send_error(413)
                return
            body = self.rfile.read(size)
            try:
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    lines, answer = list(spans(body)), ExportTraceServiceResponse()
                elif self.path == "/v1/metrics":
                    lines, answer = list(points(body)), ExportMetricsServiceResponse()
                else:
                    self.send_error(404, "OTLP/HTTP paths: /v1/traces and /v1/metrics")
                    return
            except Exception as exc:  # not OTLP protobuf (e.g. OTLP/JSON): say so, keep serving
                self.send_error(400, f"not an OTLP protobuf body: {type(exc).__name__}")
                return
            for line in lines:
                out.write(json.dumps(line) + "\n")
            out.flush()
            data = answer.SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # stdout is for the decoded data only

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m modelmeter.otel.receiver",
        description="An OTLP/HTTP endpoint that prints each span and metric point it receives as a JSON line.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port)
    print(f"OTLP/HTTP receiver at http://{args.host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
