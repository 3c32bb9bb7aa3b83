"""Usage accounting shared by the gateway and the benchmark: token counts from a response body or
from a stream of chunks, and the reassembly of a streamed answer into one response body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    reported: bool = False  # False when the upstream gave no usage at all

    @classmethod
    def from_openai(cls, usage: Any) -> Usage:
        if not isinstance(usage, dict):
            return cls()
        prompt = _int(usage.get("prompt_tokens"))
        completion = _int(usage.get("completion_tokens"))
        total = _int(usage.get("total_tokens")) or prompt + completion
        pdet = usage.get("prompt_tokens_details")
        cdet = usage.get("completion_tokens_details")
        cached = _int(pdet.get("cached_tokens")) if isinstance(pdet, dict) else 0
        write = _int(pdet.get("cache_creation_tokens")) if isinstance(pdet, dict) else 0
        reasoning = _int(cdet.get("reasoning_tokens")) if isinstance(cdet, dict) else 0
        return cls(prompt, completion, total, cached, reasoning, write, True)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class StreamAccumulator:
    """Reads each streamed chunk once: usage, ids, and the pieces of the answer.

    ``add`` returns how many choices carried new content in the chunk, which the gateway uses for
    time to first token and the benchmark for inter-token latency.
    """

    __slots__ = (
        "call_type",
        "chunks",
        "created",
        "finish",
        "id",
        "last_usage_only",
        "model",
        "parts",
        "roles",
        "tool_calls",
        "usage",
    )

    def __init__(self, call_type: str) -> None:
        self.call_type = call_type
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.usage = Usage()
        self.parts: dict[int, list[str]] = {}
        self.roles: dict[int, str] = {}
        self.finish: dict[int, str | None] = {}
        self.tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.chunks = 0
        self.last_usage_only = False  # the latest chunk carried usage and no choices

    def add(self, data: bytes) -> int:
        """Account for one ``data:`` payload; returns the number of choices with new content."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return 0
        return self.add_chunk(chunk) if isinstance(chunk, dict) else 0

    def add_chunk(self, chunk: dict[str, Any]) -> int:
        self.chunks += 1
        self.last_usage_only = False
        if self.id is None:
            self.id = chunk.get("id")
            self.model = chunk.get("model")
            self.created = chunk.get("created")
        usage = chunk.get("usage")
        if usage:
            self.usage = Usage.from_openai(usage)
        choices = chunk.get("choices")
        if not choices:
            self.last_usage_only = bool(usage)
            return 0
        produced = 0
        for choice in choices:
            index = choice.get("index", 0)
            if self.call_type == "chat":
                delta = choice.get("delta") or {}
                if "role" in delta:
                    self.roles[index] = delta["role"]
                text = delta.get("content") or delta.get("reasoning_content")
                if delta.get("tool_calls"):
                    self._add_tool_calls(index, delta["tool_calls"])
                    produced += 1
            else:
                text = choice.get("text")
            if text:
                self.parts.setdefault(index, []).append(text)
                produced += 1
            if choice.get("finish_reason") is not None:
                self.finish[index] = choice["finish_reason"]
        return produced

    def _add_tool_calls(self, index: int, deltas: list[dict[str, Any]]) -> None:
        calls = self.tool_calls.setdefault(index, {})
        for delta in deltas:
            call = calls.setdefault(delta.get("index", 0), {"type": "function", "function": {}})
            if delta.get("id"):
                call["id"] = delta["id"]
            fn = delta.get("function") or {}
            target = call["function"]
            if fn.get("name"):
                target["name"] = target.get("name", "") + fn["name"]
            if fn.get("arguments"):
                target["arguments"] = target.get("arguments", "") + fn["arguments"]

    def text(self, index: int = 0) -> str:
        return "".join(self.parts.get(index, ()))

    def response(self) -> dict[str, Any]:
        """The stream reassembled into the shape of the non-streamed response."""
        indexes = sorted(set(self.parts) | set(self.finish) | set(self.roles) | set(self.tool_calls))
        choices: list[dict[str, Any]] = []
        for i in indexes or [0]:
            if self.call_type == "chat":
                message: dict[str, Any] = {"role": self.roles.get(i, "assistant"),
                                           "content": self.text(i)}
                if i in self.tool_calls:
                    message["tool_calls"] = [self.tool_calls[i][k] for k in sorted(self.tool_calls[i])]
                choices.append({"index": i, "message": message,
                                "finish_reason": self.finish.get(i)})
            else:
                choices.append({"index": i, "text": self.text(i),
                                "finish_reason": self.finish.get(i)})
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion" if self.call_type == "chat" else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.usage.reported:
            body["usage"] = {"prompt_tokens": self.usage.prompt_tokens,
                             "completion_tokens": self.usage.completion_tokens,
                             "total_tokens": self.usage.total_tokens}
        return body
