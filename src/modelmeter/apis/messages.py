"""Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens), passed through to an
Anthropic-shaped upstream: its usage object, its stream events and its error shape."""

from __future__ import annotations

from typing import Any

import orjson

from modelmeter.apis.base import FrontDoor
from modelmeter.metering.usage import Usage, _int, _str

# Our error types in Anthropic's vocabulary (their SDKs map the status, the type is for people).
_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "rate_limit_error": "rate_limit_error",
    "server_error": "api_error",
    "upstream_error": "api_error",
    "service_unavailable": "overloaded_error",
}


# Our codes whose OpenAI type (invalid_request_error) Anthropic names more precisely.
_CODES = {
    "invalid_api_key": "authentication_error",
    "model_not_found": "not_found_error",
    "unknown_url": "not_found_error",
    "request_too_large": "request_too_large",
}


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """Anthropic's shape; ``param`` and ``code`` have no place in it and are left out."""
    kind = _CODES.get(code or "") or _TYPES.get(type_, type_)
    return {"type": "error", "error": {"type": kind, "message": message}}


def usage_from(usage: Any) -> Usage:
    """Anthropic counts input apart from cache reads and writes; Usage follows OpenAI, where the
    prompt includes them. The cache writes are split by lifetime (5 min and 1 h are priced apart)."""
    if not isinstance(usage, dict):
        return Usage()
    fresh = _int(usage.get("input_tokens"))
    read = _int(usage.get("cache_read_input_tokens"))
    write = _int(usage.get("cache_creation_input_tokens"))
    split = usage.get("cache_creation")
    write_1h = _int(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) else 0
    write_1h = min(write_1h, write)
    output = _int(usage.get("output_tokens"))
    prompt = fresh + read + write
    return Usage(prompt, output, prompt + output, read, 0, write - write_1h, True, write_1h)


def _merge_usage(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """message_delta's usage is cumulative, and may leave out what message_start said."""
    out = {**old}
    for key, value in new.items():
        if value is not None:
            out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


class MessagesAccumulator:
    """The Messages stream: message_start, content_block_*, message_delta, message_stop."""

    __slots__ = (
        "blocks",
        "call_type",
        "chunks",
        "error",
        "id",
        "last_usage_only",
        "message",
        "model",
        "stopped",
        "usage",
        "usage_raw",
    )

    def __init__(self, call_type: str) -> None:
        self.call_type = call_type
        self.id: str | None = None
        self.model: str | None = None
        self.usage = Usage()
        self.usage_raw: dict[str, Any] = {}
        self.chunks = 0
        self.last_usage_only = False
        self.message: dict[str, Any] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.stopped = False
        self.error: str | None = None

    def add(self, data: bytes) -> int:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return 0
        if not isinstance(event, dict):
            return 0
        self.chunks += 1
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            self.message = {k: v for k, v in event["message"].items() if k != "content"}
            self.id = _str(self.message.get("id"))
            self.model = _str(self.message.get("model"))
            self._usage(self.message.get("usage"))
        elif kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            self.blocks[_index(event)] = dict(event["content_block"])
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            return self._delta(_index(event), event["delta"])
        elif kind == "message_delta":
            if isinstance(event.get("delta"), dict):
                self.message.update(event["delta"])
            self._usage(event.get("usage"))
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":  # e.g. overloaded_error mid-stream: the answer ends here
            err = event.get("error")
            err = err if isinstance(err, dict) else {}
            self.error = f"{err.get('type', 'error')}: {err.get('message', '')}"
        return 0

    def _usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.usage_raw = _merge_usage(self.usage_raw, usage)
            self.usage = usage_from(self.usage_raw)

    def _delta(self, index: int, delta: dict[str, Any]) -> int:
        block = self.blocks.setdefault(index, {"type": "text", "text": ""})
        for key in ("text", "partial_json", "thinking", "signature"):
            piece = delta.get(key)
            if isinstance(piece, str):
                target = "input_json" if key == "partial_json" else key
                block[target] = block.get(target, "") + piece
                return 1 if piece and key != "signature" else 0
        return 0

    def finished(self) -> bool:
        return self.stopped

    def failure(self) -> str | None:
        return self.error

    def all_text(self) -> str:
        return "".join(str(b.get("text") or b.get("input_json") or "") for _, b in sorted(self.blocks.items()))

    def response(self) -> dict[str, Any]:
        content = []
        for _, block in sorted(self.blocks.items()):
            block = dict(block)
            if "input_json" in block:
                raw = block.pop("input_json")
                try:
                    block["input"] = orjson.loads(raw) if raw else {}
                except orjson.JSONDecodeError:
                    block["input"] = raw
            content.append(block)
        return {**self.message, "content": content, "usage": self.usage_raw}


def _index(event: dict[str, Any]) -> int:
    index = event.get("index", 0)
    return index if isinstance(index, int) and not isinstance(index, bool) else 0


MESSAGES = FrontDoor("messages", "messages", usage_from, MessagesAccumulator, error_body)
COUNT_TOKENS = FrontDoor(
    "count_tokens", "messages", lambda _usage: Usage(reported=True), MessagesAccumulator, error_body
)
