"""GET /metrics in Prometheus text format: per-deployment counters and histograms, fed by the writer
after each stored batch (never by the request path), plus the recorder's backlog and write lag.

Counters are per process: with ``--workers N`` scrape each worker, or read totals from the usage API.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from modelmeter.recording.sink import RecordSink
from modelmeter.storage.row import RecordRow
from modelmeter.units import PICO

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _RecorderCollector(Collector):
    def __init__(self, recorder: RecordSink) -> None:
        self._recorder = recorder

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        r = self._recorder
        backlog = r.backlog
        yield GaugeMetricFamily("modelmeter_recorder_queue_depth", "Records waiting to be stored", value=r.depth)
        yield GaugeMetricFamily(
            "modelmeter_recorder_write_lag_seconds",
            "How long the newest stored record waited between its end and its write",
            value=r.last_lag_s,
        )
        yield GaugeMetricFamily(
            "modelmeter_recorder_records_written", "Records stored by this process", value=r.written
        )
        yield GaugeMetricFamily(
            "modelmeter_recorder_failed_batches", "Batch writes that failed and were retried", value=r.failed_batches
        )
        yield GaugeMetricFamily(
            "modelmeter_recorder_spooled_records",
            "Records in the local spool file, waiting for the database",
            value=backlog["spooled"],
        )
        yield GaugeMetricFamily(
            "modelmeter_recorder_held_records",
            "Records held in memory because neither the database nor the spool takes them",
            value=backlog["held_in_memory"],
        )
        yield GaugeMetricFamily(
            "modelmeter_recorder_storage_failing",
            "1 while recording is not safe (the database or the spool refuses writes)",
            value=int(r.problem is not None),
        )
        yield CounterMetricFamily(
            "modelmeter_recorder_records_lost",
            "Records lost: neither the database, the spool nor memory could take them",
            value=r.lost,
        )


class Metrics:
    def __init__(self, recorder: RecordSink) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["deployment"]
        self.requests = Counter("modelmeter_requests", "Requests recorded", [*labels, "status"], registry=self.registry)
        self.tokens = Counter("modelmeter_tokens", "Tokens recorded", [*labels, "type"], registry=self.registry)
        self.spend = Counter("modelmeter_spend_usd", "Spend recorded, USD", labels, registry=self.registry)
        self.latency = Histogram(
            "modelmeter_request_latency_seconds",
            "Request latency",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "modelmeter_time_to_first_token_seconds",
            "Time to first token",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_RecorderCollector(recorder))

    def observe(self, rows: list[RecordRow]) -> None:
        """A recorder listener: called in the writer thread with each stored batch. Counters are
        summed over the batch first: one ``labels()`` lookup (a lock and a dict) per series, not
        several per record."""
        requests: collections.Counter[tuple[str, str]] = collections.Counter()
        tokens: collections.Counter[tuple[str, str]] = collections.Counter()
        spend: collections.Counter[str] = collections.Counter()
        latencies: dict[str, list[float]] = {}
        ttfts: dict[str, list[float]] = {}
        for r in rows:
            dep = r["deployment"]
            requests[(dep, r["status"])] += 1
            for kind, n in zip(
                _TOKEN_KINDS,
                (r["prompt_tokens"], r["completion_tokens"], r["cached_tokens"], r["reasoning_tokens"]),
                strict=True,
            ):
                tokens[(dep, kind)] += n
            spend[dep] += r["spend_pusd"]
            latencies.setdefault(dep, []).append(r["latency_ms"] / 1000)
            if r["ttft_ms"] is not None:
                ttfts.setdefault(dep, []).append(r["ttft_ms"] / 1000)
        for (dep, status), n in requests.items():
            self.requests.labels(dep, status).inc(n)
        for (dep, kind), n in tokens.items():
            if n:
                self.tokens.labels(dep, kind).inc(n)
        for dep, pusd in spend.items():
            if pusd:
                self.spend.labels(dep).inc(pusd / PICO)
        for histogram, values in ((self.latency, latencies), (self.ttft, ttfts)):
            for dep, seconds in values.items():
                child = histogram.labels(dep)
                for v in seconds:
                    child.observe(v)


_TOKEN_KINDS = ("prompt", "completion", "cached", "reasoning")


router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    registry = request.app.state.mm.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
