"""The finished record row: one typed definition for everything that passes it along.

``metering.record.finish`` builds it; the recorder, the spool, the storage layer and the writer's
listeners (metrics, live events, keys) read it. The stored column lists derive from it, so a new
field is added here once (and to ``finish`` and a migration), never as a string in eight modules.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class RecordRow(TypedDict):
    id: str
    request_id: str | None
    deployment: str
    model: str
    model_id: str | None
    provider: str
    call_type: str
    api_base: str
    client_ip: str | None
    status: str
    http_status: int
    error: str | None
    stream: int
    start_us: int
    end_us: int
    latency_ms: float
    ttft_ms: float | None
    overhead_ms: float
    retries: int
    cache_hit: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    usage_estimated: int
    spend_pusd: int
    cost_breakdown: str  # JSON
    price_source: str
    metadata: str | None  # JSON
    tags: str | None  # JSON list
    bodies: int
    key_alias: str | None
    priced_model: str | None  # the model id the price was looked up for
    session_id: str | None  # the agent session the call belongs to (gateway/sessions.py)
    served_by: str | None  # a routed deployment's upstream that answered (0014)
    attempts: str | None  # JSON list of a routed call's attempts (0014)
    request: str | None  # JSON, stored in record_bodies
    response: str | None  # JSON, stored in record_bodies
    # A translated call's bodies as sent to / answered by the upstream (JSON, in record_bodies);
    # absent from rows spooled before migration 0011.
    upstream_request: NotRequired[str | None]
    upstream_response: NotRequired[str | None]


FIELDS: tuple[str, ...] = tuple(RecordRow.__annotations__)
BODY_FIELDS = ("request", "response", "upstream_request", "upstream_response")  # in record_bodies, not in records
RECORD_COLUMNS: tuple[str, ...] = tuple(f for f in FIELDS if f not in BODY_FIELDS)
# Text columns and the integer columns' ranges (as the migrations created them), for sanitising.
TEXT_FIELDS: tuple[str, ...] = (
    "id",
    "request_id",
    "deployment",
    "model",
    "model_id",
    "provider",
    "call_type",
    "api_base",
    "client_ip",
    "status",
    "error",
    "cost_breakdown",
    "price_source",
    "metadata",
    "tags",
    "key_alias",
    "priced_model",
    "session_id",
    "served_by",
    "attempts",
    "request",
    "response",
    "upstream_request",
    "upstream_response",
)
SMALLINT_FIELDS = ("http_status", "stream", "retries", "cache_hit", "usage_estimated", "bodies")
BIGINT_FIELDS = (
    "start_us",
    "end_us",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "spend_pusd",
)
