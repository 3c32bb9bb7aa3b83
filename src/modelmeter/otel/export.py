"""The export's wiring: SDK providers, OTLP/HTTP exporters, and the recorder hook that feeds them.

``observe`` runs in the recorder's finisher thread, once per finished record: it builds the span and
records the metrics there, and the SDK's batch processor and periodic reader send them from their own
threads. The request path pays only for the traceparent (``context``).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from modelmeter import __version__
from modelmeter.otel.metrics import GenAIMetrics
from modelmeter.otel.settings import OtelSettings
from modelmeter.otel.spans import SCOPE, build_span, export_span

if TYPE_CHECKING:
    from modelmeter.metering.record import CallRecord
    from modelmeter.storage.row import RecordRow

log = logging.getLogger("modelmeter.otel")


class OtelExport:
    def __init__(self, settings: OtelSettings) -> None:
        assert settings.endpoint
        self.settings = settings
        self.resource = Resource.create({"service.name": settings.service_name, "service.version": __version__})
        base = settings.endpoint
        self._spans = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=dict(settings.headers), timeout=10),
            max_queue_size=20_000,  # beyond this spans are dropped (never waited for)
        )
        self._reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics", headers=dict(settings.headers), timeout=10),
            export_interval_millis=settings.export_interval_s * 1000,
        )
        # (no atexit hook: shutdown() is bounded, an exit must not wait on a dead collector)
        self._meters = MeterProvider(resource=self.resource, metric_readers=[self._reader], shutdown_on_exit=False)
        self.metrics = GenAIMetrics(self._meters.get_meter(SCOPE.name, SCOPE.version))
        self.failures = 0

    def observe(self, rec: CallRecord, row: RecordRow) -> None:
        """The recorder's finish hook: never raises (the finisher thread must go on)."""
        try:
            export_span(self._spans, build_span(rec, row, self.resource, self.settings.capture_content))
            self.metrics.record(rec, row)
        except Exception:
            self.failures += 1
            if self.failures == 1:
                log.exception("could not export the span of record %s", rec.id)

    def flush(self, timeout_s: float = 10.0) -> None:
        self._spans.force_flush(int(timeout_s * 1000))
        self._meters.force_flush(int(timeout_s * 1000))

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """After the recorder stopped: send what is left, then stop the export threads. Bounded:
        with the collector down the exporters retry for longer, and the server must still stop
        promptly (what is not sent by then is lost, as it would be anyway)."""
        worker = threading.Thread(target=self._shutdown, name="modelmeter-otel-shutdown", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            log.warning("OpenTelemetry export: the collector did not take the last spans within %g s", timeout_s)

    def _shutdown(self) -> None:
        try:
            self._spans.shutdown()
            self._meters.shutdown(timeout_millis=10_000)
        except Exception:
            log.exception("OpenTelemetry export did not shut down cleanly")
