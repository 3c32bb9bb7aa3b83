"""A finished call as GenAI semantic-convention attributes (pure functions: no SDK needed here).

From the ``CallRecord`` (what the gateway saw) and its stored row (the tokens as recorded, estimated
where the upstream reported none), so a span says exactly what the Usage tab says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from modelmeter.otel.content import input_messages, output_messages

if TYPE_CHECKING:
    from modelmeter.metering.record import CallRecord
    from modelmeter.storage.row import RecordRow

# The record's call type -> gen_ai.operation.name; the Messages and Responses APIs are chats.
OPERATIONS = {
    "chat": "chat",
    "messages": "chat",
    "responses": "chat",
    "completion": "text_completion",
    "embedding": "embeddings",
}
# Request parameters worth a span attribute: body field -> attribute
_REQUEST_PARAMS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
}


def operation_name(call_type: str) -> str:
    return OPERATIONS.get(call_type, call_type)


def server_of(api_base: str | None) -> tuple[str | None, int | None]:
    """The upstream's host and port (the scheme's default port when none is written)."""
    if not api_base:
        return None, None
    try:
        parts = urlsplit(api_base)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None, None
    return parts.hostname, port


def error_type(rec: CallRecord) -> str | None:
    """The HTTP status the caller got, as semconv's HTTP spans do ("429", "502", "499": hung up)."""
    return str(rec.http_status) if rec.status != "success" else None


def common_attributes(rec: CallRecord, row: RecordRow) -> dict[str, Any]:
    """What spans and metrics share (low cardinality: no ids)."""
    dep = rec.deployment
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation_name(rec.call_type),
        "gen_ai.provider.name": dep.provider,
        "gen_ai.request.model": rec.model,
    }
    if row["model_id"]:
        attrs["gen_ai.response.model"] = row["model_id"]
    host, port = server_of(dep.api_base)
    if host is not None:
        attrs["server.address"] = host
        attrs["server.port"] = port
    if (err := error_type(rec)) is not None:
        attrs["error.type"] = err
    return attrs


def response_id(rec: CallRecord) -> str | None:
    body = rec.response_body
    if isinstance(body, dict) and isinstance(body.get("id"), str) and rec.status == "success":
        return str(body["id"])
    return None


def span_attributes(rec: CallRecord, row: RecordRow, capture_content: bool = False) -> dict[str, Any]:
    attrs = common_attributes(rec, row)
    if (rid := response_id(rec)) is not None:
        attrs["gen_ai.response.id"] = rid
    usage = rec.usage
    attrs["gen_ai.usage.input_tokens"] = row["prompt_tokens"]
    if rec.call_type != "embedding":
        attrs["gen_ai.usage.output_tokens"] = row["completion_tokens"]
    if row["cached_tokens"]:
        attrs["gen_ai.usage.cache_read.input_tokens"] = row["cached_tokens"]
    written = usage.cache_write_tokens + usage.cache_write_1h_tokens
    if written:
        attrs["gen_ai.usage.cache_creation.input_tokens"] = written
    body = rec.request_body if isinstance(rec.request_body, dict) else {}
    for name, attr in _REQUEST_PARAMS.items():
        value = body.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[attr] = value
    if rec.stream:
        attrs["gen_ai.request.stream"] = True  # (not in semconv yet: how the call was made)
    reasons = finish_reasons(rec.response_body)
    if reasons:
        attrs["gen_ai.response.finish_reasons"] = reasons
    # modelmeter's own: how to find the record in the Usage tab
    attrs["modelmeter.record_id"] = rec.id
    attrs["modelmeter.deployment"] = rec.deployment.name
    attrs["http.response.status_code"] = rec.http_status
    if rec.key_alias:
        attrs["modelmeter.key_alias"] = rec.key_alias
    if rec.cache_hit:
        attrs["modelmeter.cache_hit"] = True
    if capture_content:
        if (messages := input_messages(rec.call_type, rec.request_body)) is not None:
            attrs["gen_ai.input.messages"] = messages
        if (answer := output_messages(rec.call_type, rec.response_body)) is not None:
            attrs["gen_ai.output.messages"] = answer
    return attrs


def finish_reasons(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    if isinstance(body.get("choices"), list):  # chat completions, completions
        return [
            c["finish_reason"]
            for c in body["choices"]
            if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)
        ]
    if isinstance(body.get("stop_reason"), str):  # messages
        return [body["stop_reason"]]
    if body.get("object") == "response" and isinstance(body.get("status"), str):  # responses
        return [body["status"]]
    return []
