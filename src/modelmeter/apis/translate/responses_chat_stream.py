"""Responses events from the upstream -> the chat.completion.chunk stream the client reads.

Text deltas become ``content`` deltas; each ``function_call`` output item becomes a tool call whose
first chunk names it (``output_item.added``) and whose argument deltas become ``arguments``
fragments, numbered by call (chat clients join fragments by that index). The usage rides on the
final event (``response.completed`` / ``.incomplete``) and goes into one last usage chunk when the
client asked for it (``stream_options.include_usage``), then ``data: [DONE]``. ``response.failed``
and ``error`` events become chat's mid-stream error frame.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from modelmeter.apis.translate.chat_to_responses import finish_reason, usage
from modelmeter.apis.translate.wire import new_id, sse
from modelmeter.sse import DONE

_REASONING = ("response.reasoning_summary_text.delta", "response.reasoning_text.delta")


class ResponsesToChatStream:
    """Feed Responses stream events (dicts, or each event's raw ``data`` bytes); get chat SSE bytes back."""

    def __init__(self, include_usage: bool = False, model: str = "") -> None:
        self.include_usage = include_usage
        self._id = "chatcmpl-" + new_id("")
        self._model = model  # the name the client sees; else the upstream's
        self._created = int(time.time())
        self._started = False
        self._calls: dict[str, int] = {}  # function_call item id -> chat tool-call index
        self._streamed: set[int] = set()  # calls whose arguments came as deltas
        self._usage: dict[str, Any] | None = None
        self.done = False

    def _frame(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse(None, self._frame([choice]))

    def _start(self, response: Mapping[str, Any]) -> bytes:
        if self._started:
            return b""
        self._started = True
        if response.get("id"):
            self._id = "chatcmpl-" + str(response["id"])
        self._model = self._model or str(response.get("model") or "")
        self._created = response.get("created_at") or self._created
        return self._chunk({"role": "assistant", "content": ""})

    def feed_data(self, data: bytes) -> bytes:
        if data.strip() == DONE:
            return self.finish()
        return self.feed(orjson.loads(data))

    def feed(self, event: Mapping[str, Any]) -> bytes:
        if self.done:
            return b""
        kind = event.get("type")
        found = event.get("response")
        response: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        out = self._start(response)
        if kind in ("response.completed", "response.incomplete"):
            self._usage = response.get("usage")
            return out + self._end(finish_reason(response, bool(self._calls)))
        if kind == "response.failed":
            err = response.get("error") or {}
            return out + self.error(
                str(err.get("message") or "the response failed"), str(err.get("code") or "server_error")
            )
        if kind == "error":
            return out + self.error(
                str(event.get("message") or "upstream error"), str(event.get("code") or "api_error")
            )
        delta = event.get("delta")
        if kind == "response.output_text.delta" and delta:
            return out + self._chunk({"content": delta})
        if kind == "response.refusal.delta" and delta:
            return out + self._chunk({"refusal": delta})
        if kind in _REASONING and delta:
            return out + self._chunk({"reasoning_content": delta})
        if kind in ("response.output_item.added", "response.output_item.done"):
            item = event.get("item") or {}
            if item.get("type") == "function_call" and item.get("id") not in self._calls:
                out += self._call(item)
            return out
        if kind == "response.function_call_arguments.delta" and delta:
            position = self._calls.get(str(event.get("item_id")))
            if position is None:
                return out
            self._streamed.add(position)
            return out + self._chunk({"tool_calls": [{"index": position, "function": {"arguments": delta}}]})
        if kind == "response.function_call_arguments.done":
            position = self._calls.get(str(event.get("item_id")))
            if position is not None and position not in self._streamed and event.get("arguments"):
                self._streamed.add(position)  # a server that sends the arguments whole, not as deltas
                fragment = {"index": position, "function": {"arguments": event["arguments"]}}
                return out + self._chunk({"tool_calls": [fragment]})
        return out  # created, in_progress, content parts, *.done events: nothing new for chat

    def _call(self, item: Mapping[str, Any]) -> bytes:
        position = self._calls[str(item.get("id") or new_id("fc_"))] = len(self._calls)
        arguments = item.get("arguments") or ""
        if arguments:  # a call announced whole (output_item.done without added)
            self._streamed.add(position)
        call = {
            "index": position,
            "id": item.get("call_id") or new_id("call_"),
            "type": "function",
            "function": {"name": item.get("name", ""), "arguments": arguments},
        }
        return self._chunk({"tool_calls": [call]})

    def _end(self, finish: str) -> bytes:
        self.done = True
        out = self._chunk({}, finish)
        if self.include_usage:
            out += sse(None, {**self._frame([]), "usage": usage(self._usage)})
        return out + b"data: [DONE]\n\n"

    def finish(self) -> bytes:
        """The upstream ended without its final event's status: close as a stop (no usage known)."""
        if self.done:
            return b""
        return self._start({}) + self._end("tool_calls" if self._calls else "stop")

    def error(self, message: str, kind: str = "api_error") -> bytes:
        """A mid-stream failure, in the error shape chat clients read from a stream."""
        self.done = True
        return sse(None, {"error": {"message": message, "type": kind, "param": None, "code": kind}})
