"""A finished call as an SDK span: the ids minted on the hot path (``CallRecord.trace``), the
record's own start and end, its attributes; handed to the batch processor, which exports it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from modelmeter import __version__
from modelmeter.otel.attributes import operation_name, span_attributes
from modelmeter.otel.context import TraceContext, start_trace

if TYPE_CHECKING:
    from modelmeter.metering.record import CallRecord
    from modelmeter.storage.row import RecordRow

SCOPE = InstrumentationScope("modelmeter", __version__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def build_span(rec: CallRecord, row: RecordRow, resource: Resource, capture_content: bool = False) -> ReadableSpan:
    trace: TraceContext = rec.trace if rec.trace is not None else start_trace(None)
    flags = _SAMPLED if trace.sampled else TraceFlags(TraceFlags.DEFAULT)
    parent = None
    if trace.parent_span_id is not None:
        parent = SpanContext(trace.trace_id, trace.parent_span_id, is_remote=True, trace_flags=flags)
    error = rec.status != "success"
    return ReadableSpan(
        name=f"{operation_name(rec.call_type)} {rec.model}",
        context=SpanContext(trace.trace_id, trace.span_id, is_remote=False, trace_flags=flags),
        parent=parent,
        resource=resource,
        attributes=span_attributes(rec, row, capture_content),
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, rec.error) if error else Status(StatusCode.UNSET),
        # the row's microseconds: the span starts and ends when the record says
        start_time=row["start_us"] * 1000,
        end_time=row["end_us"] * 1000,
        instrumentation_scope=SCOPE,
    )


def export_span(processor: SpanProcessor, span: ReadableSpan) -> None:
    """Queue the span for the batch exporter (unsampled ones, as the caller asked, are not sent)."""
    if span.context is not None and span.context.trace_flags.sampled:
        processor.on_end(span)
