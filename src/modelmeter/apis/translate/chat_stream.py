"""Anthropic Messages events from the upstream -> the chat.completion.chunk stream the client reads.

Text deltas become ``content`` deltas; a ``tool_use`` block becomes a tool call whose first chunk
names it and whose ``input_json_delta`` fragments become ``arguments`` fragments, numbered by call
(not by block, as chat clients join calls by that index). Input usage arrives in ``message_start``
and output usage in ``message_delta``; both go into one last usage chunk when the client asked
for it (``stream_options.include_usage``), then ``data: [DONE]``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from modelmeter.apis.translate.chat_to_messages import finish_reason, usage
from modelmeter.apis.translate.wire import new_id, sse


class MessagesToChatStream:
    """Feed Anthropic stream events (dicts, or each event's raw ``data`` bytes); get chat SSE bytes back."""

    def __init__(self, include_usage: bool = False, model: str = "") -> None:
        self.include_usage = include_usage
        self._id = "chatcmpl-" + new_id("")
        self._model = model  # the name the client sees; else the upstream's
        self._created = int(time.time())
        self._calls: dict[int, int] = {}  # Anthropic block index -> chat tool-call index
        self._usage: dict[str, Any] = {}
        self._stop: str | None = None
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse(None, self._frame([choice]))

    def _frame(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }

    def feed_data(self, data: bytes) -> bytes:
        return self.feed(orjson.loads(data))

    def feed(self, event: Mapping[str, Any]) -> bytes:
        if self.done:
            return b""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._id = "chatcmpl-" + str(message.get("id") or new_id(""))
            self._model = self._model or message.get("model") or ""
            self._usage.update(message.get("usage") or {})
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                position = self._calls[event.get("index", 0)] = len(self._calls)
                call = {
                    "index": position,
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""},
                }
                return self._chunk({"tool_calls": [call]})
            if block.get("type") == "text" and block.get("text"):
                return self._chunk({"content": block["text"]})
            return b""
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "message_delta":
            self._stop = (event.get("delta") or {}).get("stop_reason") or self._stop
            # cumulative counts; absent ones keep message_start's value
            self._usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            return b""
        if kind == "message_stop":
            return self.finish()
        if kind == "error":
            return self.error(
                (event.get("error") or {}).get("message", "upstream error"),
                (event.get("error") or {}).get("type", "api_error"),
            )
        return b""  # ping, content_block_stop: nothing to say in chat

    def _delta(self, event: Mapping[str, Any]) -> bytes:
        delta = event.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return self._chunk({"content": delta.get("text", "")})
        if kind == "input_json_delta" and delta.get("partial_json"):
            position = self._calls.get(event.get("index", 0), 0)
            return self._chunk({"tool_calls": [{"index": position, "function": {"arguments": delta["partial_json"]}}]})
        if kind == "thinking_delta":
            return self._chunk({"reasoning_content": delta.get("thinking", "")})
        return b""

    @property
    def usage(self) -> dict[str, Any]:
        """The chat usage so far (what the last usage chunk carries)."""
        return usage(self._usage)

    def finish(self) -> bytes:
        """The message ended: the finish reason, the usage chunk if asked for, and ``[DONE]``."""
        if self.done:
            return b""
        self.done = True
        out = self._chunk({}, finish_reason(self._stop))
        if self.include_usage:
            out += sse(None, {**self._frame([]), "usage": self.usage})
        return out + b"data: [DONE]\n\n"

    def error(self, message: str, kind: str = "api_error") -> bytes:
        """A mid-stream failure, in the error shape chat clients read from a stream."""
        self.done = True
        return sse(None, {"error": {"message": message, "type": kind, "param": None, "code": kind}})
