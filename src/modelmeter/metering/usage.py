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
    cache_write_1h_tokens: int = 0  # Anthropic's 1-hour cache writes (cache_write_tokens: 5 min)

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


MAX_TOKENS = 2**31 - 1  # more is not a real count; the cap keeps any value storable (BIGINT)


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, MAX_TOKENS)
    return 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# Chunk fields that are not part of the answer: the chunk's own kind, and OpenAI's per-chunk
# random padding (against length side channels), which means nothing once the chunks are joined.
_CHUNK_ONLY = frozenset({"id", "object", "created", "model", "choices", "usage", "obfuscation"})
_CHOICE_OWN = frozenset({"index", "delta", "text", "finish_reason", "logprobs"})


def _merge(target: dict[str, Any], delta: dict[str, Any]) -> None:
    """Fold one streamed delta into what came before: strings are appended (content, refusal,
    reasoning), lists extended (logprobs' tokens, annotations), objects merged; a null adds nothing."""
    for key, value in delta.items():
        if value is None:
            continue
        old = target.get(key)
        if isinstance(value, str) and isinstance(old, str):
            target[key] = old + value
        elif isinstance(value, list) and isinstance(old, list):
            old.extend(value)
        elif isinstance(value, dict) and isinstance(old, dict):
            _merge(old, value)
        elif isinstance(value, dict):
            target[key] = {}
            _merge(target[key], value)
        else:
            target[key] = list(value) if isinstance(value, list) else value


class StreamAccumulator:
    """Reads each streamed chunk once: usage, ids, and the pieces of the answer.

    ``add`` returns how many choices carried new content in the chunk, which the gateway uses for
    time to first token and the benchmark for inter-token latency. ``response`` rebuilds the
    non-streamed shape with everything the chunks carried (logprobs, system_fingerprint, usage
    details, refusals, …), so the stored body holds what the client received.
    """

    __slots__ = (
        "call_type",
        "choice_extra",
        "chunks",
        "created",
        "extra",
        "fields",
        "finish",
        "head_keys",
        "id",
        "last_usage_only",
        "model",
        "parts",
        "roles",
        "texts",
        "tool_calls",
        "usage",
        "usage_raw",
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
        self.texts: dict[int, dict[str, list[str]]] = {}  # each chat message's text fields, in pieces
        self.fields: dict[int, dict[str, Any]] = {}  # and its other delta fields, merged
        self.choice_extra: dict[int, dict[str, Any]] = {}  # logprobs and other choice fields
        self.extra: dict[str, Any] = {}  # the response's other fields: system_fingerprint, …
        self.head_keys = -1  # how many fields the last chunk read for ``extra`` had
        self.usage_raw: dict[str, Any] | None = None  # the usage object as the upstream sent it
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
            # Upstream data: only well-typed values reach the record (and the database).
            self.id = _str(chunk.get("id"))
            self.model = _str(chunk.get("model"))
            created = chunk.get("created")
            self.created = created if isinstance(created, int) and not isinstance(created, bool) else None
        if len(chunk) != self.head_keys:  # (chunks repeat the same fields: read them once)
            self.head_keys = len(chunk)
            for key, value in chunk.items():
                if value is not None and key not in _CHUNK_ONLY:
                    self.extra[key] = value
        usage = chunk.get("usage")
        if usage and isinstance(usage, dict):
            self.usage = Usage.from_openai(usage)
            self.usage_raw = usage
        choices = chunk.get("choices")
        if not choices or not isinstance(choices, list):
            self.last_usage_only = bool(usage)
            return 0
        produced = 0
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            if not isinstance(index, int) or isinstance(index, bool):
                index = 0
            if self.call_type == "chat":
                delta = choice.get("delta")
                if not isinstance(delta, dict):
                    delta = {}
                text = delta.get("content")
                texts = self.texts.get(index)
                if texts is not None and len(delta) == 1 and type(text) is str and "content" in texts:
                    texts["content"].append(text)  # most chunks: one more piece of the content
                else:
                    self._add_delta(index, delta)
                text = text or delta.get("reasoning_content")
                calls = delta.get("tool_calls")
                if calls and isinstance(calls, list) and self._add_tool_calls(index, calls):
                    produced += 1
            else:
                text = choice.get("text")
            if text and isinstance(text, str):
                self.parts.setdefault(index, []).append(text)
                produced += 1
            finish = choice.get("finish_reason")
            if isinstance(finish, str):
                self.finish[index] = finish
            if len(choice) > 4 or choice.get("logprobs") is not None:  # more than the usual four
                self._add_choice_extra(index, choice)
        return produced

    def _add_delta(self, index: int, delta: dict[str, Any]) -> None:
        if isinstance(delta.get("role"), str):
            self.roles[index] = delta["role"]
        texts = self.texts.setdefault(index, {})
        for key, value in delta.items():
            if value is None or key == "role" or key == "tool_calls":
                continue
            if type(value) is str:  # content, refusal, reasoning: joined once, at the end
                texts.setdefault(key, []).append(value)
            else:
                _merge(self.fields.setdefault(index, {}), {key: value})

    def _add_choice_extra(self, index: int, choice: dict[str, Any]) -> None:
        extra = self.choice_extra.setdefault(index, {})
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict):
            _merge(extra.setdefault("logprobs", {}), logprobs)
        for key, value in choice.items():
            if key not in _CHOICE_OWN and value is not None:
                extra[key] = value  # e.g. vLLM's stop_reason: the latest value

    def finished(self) -> bool:
        """Every choice seen has its finish_reason: the answer is complete (with or without the
        [DONE] that some servers leave out)."""
        seen = set(self.parts) | set(self.roles) | set(self.tool_calls) | set(self.texts)
        return bool(self.finish) and all(self.finish.get(i) for i in seen)

    def failure(self) -> str | None:
        return None  # a chat stream's errors end it early: ``finished`` tells

    def _add_tool_calls(self, index: int, deltas: list[Any]) -> bool:
        calls = self.tool_calls.setdefault(index, {})
        added = False
        for delta in deltas:
            if not isinstance(delta, dict):
                continue
            position = delta.get("index", 0)
            if not isinstance(position, int) or isinstance(position, bool):
                position = 0
            call = calls.setdefault(position, {"type": "function", "function": {}})
            added = True
            if isinstance(delta.get("id"), str) and delta["id"]:
                call["id"] = delta["id"]
            if isinstance(delta.get("type"), str):
                call["type"] = delta["type"]
            fn = delta.get("function")
            if not isinstance(fn, dict):
                continue
            target = call["function"]
            for key in ("name", "arguments"):
                if isinstance(fn.get(key), str) and fn[key]:
                    target[key] = target.get(key, "") + fn[key]
        return added

    def text(self, index: int = 0) -> str:
        return "".join(self.parts.get(index, ()))

    def all_text(self) -> str:
        """Every choice's text and tool-call names and arguments: what estimates count."""
        pieces = ["".join(self.parts[i]) for i in sorted(self.parts)]
        for i in sorted(self.tool_calls):
            for call in self.tool_calls[i].values():
                fn = call.get("function", {})
                pieces += [fn.get("name", ""), fn.get("arguments", "")]
        return "".join(p for p in pieces if p)

    def response(self) -> dict[str, Any]:
        """The stream reassembled into the shape of the non-streamed response."""
        indexes = sorted(set(self.parts) | set(self.finish) | set(self.roles) | set(self.tool_calls))
        choices: list[dict[str, Any]] = []
        for i in indexes or [0]:
            choice: dict[str, Any]
            if self.call_type == "chat":
                texts = {k: "".join(v) for k, v in self.texts.get(i, {}).items()}
                message: dict[str, Any] = {
                    "role": self.roles.get(i, "assistant"),
                    "content": texts.get("content", ""),
                    **self.fields.get(i, {}),
                    **texts,
                }
                if i in self.tool_calls:
                    message["tool_calls"] = [self.tool_calls[i][k] for k in sorted(self.tool_calls[i])]
                choice = {"index": i, "message": message}
            else:
                choice = {"index": i, "text": self.text(i)}
            choice.update(self.choice_extra.get(i, ()))
            choice["finish_reason"] = self.finish.get(i)
            choices.append(choice)
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion" if self.call_type == "chat" else "text_completion",
            "created": self.created,
            "model": self.model,
            **self.extra,
            "choices": choices,
        }
        if self.usage.reported and self.usage_raw is not None:
            # As sent (with its details), and the counts we read where the upstream left them out.
            body["usage"] = {**self.usage_raw}
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                body["usage"].setdefault(key, getattr(self.usage, key))
        return body
