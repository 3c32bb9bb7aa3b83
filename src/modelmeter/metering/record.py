"""One call's usage record: the facts the gateway gathers on the hot path, and the finished row.

The gateway fills a ``CallRecord`` with what it measured and hands it to the recorder; pricing,
token estimation, redaction and serialisation happen in the writer thread (``finish``), so the
request path pays for none of them.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from modelmeter.metering import tokens
from modelmeter.metering.pricing import Cost, CostLine, Pricer
from modelmeter.metering.redact import redact_ip
from modelmeter.metering.usage import Usage
from modelmeter.storage.row import RecordRow
from modelmeter.units import PICO
from modelmeter.upstreams.scrub import redact_url

if TYPE_CHECKING:
    from modelmeter.config import Deployment
    from modelmeter.otel.context import TraceContext
    from modelmeter.routing.attempt import Attempt

# Calls given up while the upstream worked on them (the client hung up; our timeout): the upstream
# still bills the prompt at least, so the record estimates what it did not report.
ABANDONED_STATUSES = (499, 504)
MAX_STORED_BODY_BYTES = 1024 * 1024  # the default of the server's max_stored_body_bytes
log = logging.getLogger("modelmeter.metering")
_random_bits = random.getrandbits


def new_record_id(now: float | None = None) -> str:
    """Time-ordered unique id: 12 hex digits of milliseconds, then 64 random bits.

    The bits come from ``random`` (seeded from the OS, and reseeded in forked children), not
    ``os.urandom``: an id needs to be unique, not secret, and ``os.urandom`` is a system call that
    lets go of the GIL on the hot path, where the writer thread then took it for up to 5 ms."""
    ms = int((now if now is not None else time.time()) * 1000)
    return f"{ms:012x}{_random_bits(64):016x}"


@dataclass(slots=True)
class CallRecord:
    id: str
    deployment: Deployment
    model: str  # as requested
    call_type: str  # chat | completion | embedding
    start: float  # wall clock, seconds since the epoch (UTC)
    stream: bool = False
    client_ip: str | None = None
    end: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    overhead_ms: float = 0.0
    status: str = "success"
    http_status: int = 200
    error: str | None = None
    request_id: str | None = None
    model_id: str | None = None
    retries: int = 0
    cache_hit: bool = False
    upstream_reached: bool = False  # the request reached an upstream (which bills it, answered or not)
    usage: Usage = field(default_factory=Usage)
    request_body: Any = None  # the parsed request as the client sent it
    response_body: Any = None  # parsed response, reassembled stream, or error body
    response_text: str | None = None  # streamed text so far, for estimating tokens
    metadata: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    key_alias: str | None = None  # the virtual key's alias (never the key)
    session_id: str | None = None  # the agent session (gateway/sessions.py)
    max_stored_body_bytes: int = MAX_STORED_BODY_BYTES  # larger bodies are stored truncated
    # A translated call (gateway/translated.py): what was sent upstream and what it answered.
    upstream_request: Any = None
    upstream_response: Any = None
    trace: TraceContext | None = None  # the ids of this call's span (OpenTelemetry export on only)
    # A routed deployment (routing/): the upstream whose answer the client got, and every attempt.
    served_by: str | None = None
    attempts: list[Attempt] | None = None


def finish_or_strip(rec: CallRecord, pricer: Pricer, store_bodies: bool = True) -> RecordRow | None:
    """``finish``, and if that fails (a bug in metering), the call's facts without what failed to
    serialise; None if even that fails (the record cannot be stored)."""
    try:
        return finish(rec, pricer, store_bodies)
    except Exception:
        log.exception("could not finish record %s; storing it without bodies and metadata", rec.id)
        rec.request_body = rec.response_body = rec.metadata = None
        rec.upstream_request = rec.upstream_response = None
        rec.tags = []
        try:
            return finish(rec, pricer, False)
        except Exception:
            log.exception("record %s lost: it cannot be finished", rec.id)
            return None


def finish(rec: CallRecord, pricer: Pricer, store_bodies: bool = True) -> RecordRow:
    """Turn the gathered facts into the stored row: tokens, cost, redaction, JSON."""
    dep = rec.deployment
    usage = rec.usage
    estimated = False
    priced_model = dep.model
    try:
        if not usage.reported and (
            rec.status == "success"
            or rec.response_text
            or (rec.http_status in ABANDONED_STATUSES and rec.upstream_reached)
        ):
            usage = estimate_usage(rec)
            estimated = True
        # The configured model sets the price, not whatever id the upstream answered with.
        priced_model = pricer.priced_model(dep.provider, dep.model, rec.model_id)
        cost = pricer.cost(
            provider=dep.provider,
            model=priced_model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            override=dep.price,
            at=rec.start,
        )
    except Exception:  # a metering bug must not lose the call: keep it, unpriced
        log.exception("could not price record %s", rec.id)
        cost = Cost(Decimal(0), (), "unknown")
    if rec.cache_hit:
        # Answered from our response cache: no upstream call, so nothing is owed for it.
        cost = Cost(
            Decimal(0),
            tuple(CostLine(c.component, c.tokens, c.usd_per_million, Decimal(0)) for c in cost.breakdown),
            "response cache (no upstream call)",
        )
    breakdown = [
        {
            "component": c.component,
            "tokens": c.tokens,
            "usd_per_million": float(c.usd_per_million),
            "cost": float(c.cost),
        }
        for c in cost.breakdown
    ]
    keep = store_bodies and dep.store_bodies
    request_text = _json_or_none(rec.request_body) if keep else None
    response_text = _json_or_none(rec.response_body) if keep else None
    metadata = rec.metadata
    upstream_request = upstream_response = None
    if keep:
        cap = rec.max_stored_body_bytes
        request_text, cut_request = _capped(request_text, cap)
        response_text, cut_response = _capped(response_text, cap)
        if rec.upstream_request is not None or rec.upstream_response is not None:  # a translated call
            upstream_request, cut_up = _capped(_json_or_none(rec.upstream_request), cap)
            upstream_response, cut_down = _capped(_json_or_none(rec.upstream_response), cap)
            cut_response = cut_response or cut_up or cut_down
        if cut_request or cut_response:
            metadata = {**(metadata or {}), "bodies_truncated": True}
    start_us = int(rec.start * 1e6)
    row: RecordRow = {
        "id": rec.id,
        "request_id": rec.request_id,
        "deployment": dep.name,
        "model": rec.model,
        "model_id": rec.model_id,
        "provider": dep.provider,
        "call_type": rec.call_type,
        "api_base": redact_url(dep.api_base) or "embedded",
        "client_ip": redact_ip(rec.client_ip),
        "status": rec.status,
        "http_status": rec.http_status,
        "error": rec.error,
        "stream": int(rec.stream),
        "start_us": start_us,
        "end_us": max(int(rec.end * 1e6), start_us),
        "latency_ms": round(rec.latency_ms, 3),
        "ttft_ms": None if rec.ttft_ms is None else round(rec.ttft_ms, 3),
        "overhead_ms": round(max(rec.overhead_ms, 0.0), 3),
        "retries": rec.retries,
        "cache_hit": int(rec.cache_hit),
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "usage_estimated": int(estimated),
        "spend_pusd": int(cost.spend * PICO),
        "cost_breakdown": orjson.dumps(breakdown).decode(),
        "price_source": cost.price_source,
        "priced_model": priced_model,
        "metadata": _json_or_none(metadata) if metadata else None,
        "tags": _json_or_none([t for t in rec.tags if isinstance(t, str)]) if rec.tags else None,
        "bodies": int(keep),
        "key_alias": rec.key_alias,
        "session_id": rec.session_id,
        "served_by": rec.served_by,
        "attempts": _attempts(rec, usage.total_tokens or usage.prompt_tokens + usage.completion_tokens, cost.spend)
        if rec.attempts
        else None,
        "request": request_text,
        "response": response_text,
    }
    if upstream_request is not None or upstream_response is not None:  # only translated calls have them
        row["upstream_request"] = upstream_request
        row["upstream_response"] = upstream_response
    return row


def _attempts(rec: CallRecord, tokens: int, spend: Decimal) -> str:
    """The attempts as JSON: the answer the client got carries the call's tokens and cost (at its
    upstream's rates); the others are priced at nothing (no tokens reported), so the attempts'
    costs add up to the record's."""
    out = []
    for a in rec.attempts or ():
        item = a.as_json()
        mine = a.served and a.upstream == rec.served_by
        item["tokens"] = tokens if mine else None
        item["cost"] = float(spend) if mine else 0.0
        out.append(item)
    return orjson.dumps(out).decode()


def _capped(text: str | None, cap: int) -> tuple[str | None, bool]:
    """A body's JSON text, or if it is longer than ``cap`` bytes, its first ``cap`` bytes as a
    JSON string (still valid JSON to store and show), and whether it was cut."""
    if text is None or len(text) <= cap // 4:  # at most 4 bytes a character: surely short enough
        return text, False
    raw = text.encode()
    if len(raw) <= cap:
        return text, False
    return orjson.dumps(raw[: max(cap, 0)].decode("utf-8", "ignore")).decode(), True


def _json_or_none(body: Any) -> str | None:
    """JSON text of a body; never raises (this runs in the writer thread, which must not die)."""
    if body is None:
        return None
    if isinstance(body, bytes | bytearray):
        return orjson.dumps(body.decode("utf-8", "replace")).decode()
    try:
        return orjson.dumps(body, default=str).decode()
    except orjson.JSONEncodeError as exc:  # e.g. nested deeper than orjson writes (254 levels)
        return orjson.dumps({"modelmeter_note": f"not stored: {exc}"}).decode()


def estimate_usage(rec: CallRecord) -> Usage:
    """Count tokens ourselves where the upstream reported none (marked ``usage_estimated``)."""
    model = rec.model_id or rec.deployment.model
    body = rec.request_body if isinstance(rec.request_body, dict) else {}
    if rec.call_type == "chat":
        prompt = tokens.count_chat_prompt(body.get("messages") or [], model)
    elif rec.call_type == "completion":
        prompt = tokens.count_completion_prompt(body.get("prompt", ""), model)
    else:
        prompt = tokens.count_embedding_input(body.get("input", ""), model)
    text = rec.response_text
    if text is None and isinstance(rec.response_body, dict):
        text = _response_text(rec.response_body)
    completion = tokens.count_text(text, model) if text else 0
    return Usage(prompt, completion, prompt + completion, reported=False)


def _response_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for choice in body.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            parts.append(message["content"])
        elif isinstance(choice.get("text"), str):
            parts.append(choice["text"])
    return "".join(parts)
