"""The GenAI client metrics, recorded from each finished call (semconv names, units and buckets)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry.metrics import Meter

from modelmeter.otel.attributes import common_attributes

if TYPE_CHECKING:
    from modelmeter.metering.record import CallRecord
    from modelmeter.storage.row import RecordRow

# Bucket boundaries the semantic conventions advise.
TOKEN_BUCKETS = [4**i for i in range(14)]  # 1, 4, 16, … 67,108,864
DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]  # 0.01 s … 81.92 s
TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]


class GenAIMetrics:
    def __init__(self, meter: Meter) -> None:
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token",
            unit="s",
            description="Time to generate the first token, for successful streamed responses.",
            explicit_bucket_boundaries_advisory=TTFT_BUCKETS,
        )
        self.tpot = meter.create_histogram(
            "gen_ai.server.time_per_output_token",
            unit="s",
            description="Time per output token after the first, for successful streamed responses.",
            explicit_bucket_boundaries_advisory=TPOT_BUCKETS,
        )

    def record(self, rec: CallRecord, row: RecordRow) -> None:
        attrs = common_attributes(rec, row)
        self.duration.record(row["latency_ms"] / 1000.0, attrs)
        # Tokens only where a model worked: not for calls refused before reaching an upstream.
        if row["prompt_tokens"] or row["completion_tokens"]:
            self.tokens.record(row["prompt_tokens"], {**attrs, "gen_ai.token.type": "input"})
            if rec.call_type != "embedding":
                self.tokens.record(row["completion_tokens"], {**attrs, "gen_ai.token.type": "output"})
        if rec.status != "success" or not rec.stream or row["ttft_ms"] is None:
            return
        self.ttft.record(row["ttft_ms"] / 1000.0, attrs)
        after_first = row["completion_tokens"] - 1
        if after_first > 0:
            self.tpot.record((row["latency_ms"] - row["ttft_ms"]) / 1000.0 / after_first, attrs)
