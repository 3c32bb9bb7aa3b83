"""OpenAI's Responses API (/v1/responses), passed through to a Responses-shaped upstream: its
usage object and its stream events (the final response rides on response.completed,
response.incomplete or response.failed)."""

from __future__ import annotations

from typing import Any

import orjson

from modelmeter.apis.base import FrontDoor
from modelmeter.error_shape import error_body
from modelmeter.metering.usage import Usage, _int, _str

_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def usage_from(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    prompt = _int(usage.get("input_tokens"))
    output = _int(usage.get("output_tokens"))
    idet = usage.get("input_tokens_details")
    odet = usage.get("output_tokens_details")
    cached = _int(idet.get("cached_tokens")) if isinstance(idet, dict) else 0
    reasoning = _int(odet.get("reasoning_tokens")) if isinstance(odet, dict) else 0
    total = _int(usage.get("total_tokens")) or prompt + output
    return Usage(prompt, output, total, cached, reasoning, 0, True)


class ResponsesAccumulator:
    """Keeps the latest response object the events carried (created, in_progress, the final one)
    and the text deltas, for time to first token and a record of a stream cut short."""

    __slots__ = ("call_type", "chunks", "error", "final", "id", "last_usage_only", "latest", "model", "texts", "usage")

    def __init__(self, call_type: str) -> None:
        self.call_type = call_type
        self.id: str | None = None
        self.model: str | None = None
        self.usage = Usage()
        self.chunks = 0
        self.last_usage_only = False
        self.latest: dict[str, Any] = {}
        self.texts: list[str] = []
        self.final = False
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
        if isinstance(kind, str) and kind.endswith(".delta"):
            delta = event.get("delta")
            if isinstance(delta, str) and delta:
                if kind == "response.output_text.delta":
                    self.texts.append(delta)
                return 1
            return 0
        if kind == "error":
            self.error = f"{event.get('code') or 'error'}: {event.get('message', '')}"
            return 0
        response = event.get("response")
        if isinstance(response, dict):
            self.latest = response
            self.id = self.id or _str(response.get("id"))
            self.model = self.model or _str(response.get("model"))
            if kind in _FINAL:
                self.final = True
                self.usage = usage_from(response.get("usage"))
                if kind == "response.failed":
                    err = response.get("error")
                    err = err if isinstance(err, dict) else {}
                    self.error = f"{err.get('code') or 'response.failed'}: {err.get('message', '')}"
        return 0

    def finished(self) -> bool:
        return self.final

    def failure(self) -> str | None:
        return self.error

    def all_text(self) -> str:
        return "".join(self.texts)

    def response(self) -> dict[str, Any]:
        return self.latest


RESPONSES = FrontDoor("responses", "responses", usage_from, ResponsesAccumulator, error_body)
