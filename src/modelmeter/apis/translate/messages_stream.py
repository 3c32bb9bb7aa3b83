"""Chat chunks from the upstream -> the Anthropic Messages stream the client reads.

Anthropic streams content as numbered blocks, each opened, fed deltas and closed, one at a time;
chat streams interleave text and tool-call fragments freely. The translator opens a new block
whenever the kind of fragment changes (text, a new tool call, reasoning) and closes the one before.
Chat reports usage only in its last chunk, so ``message_start`` carries zeros and the totals come
in ``message_delta`` (the SDK's accumulator overwrites with them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelmeter.apis.translate.messages_to_chat import STOP_REASONS, usage
from modelmeter.apis.translate.wire import new_id, sse
from modelmeter.sse import DONE


class ChatToMessagesStream:
    """Feed chat.completion.chunk dicts (or their raw ``data`` bytes); get Anthropic SSE bytes back."""

    __slots__ = ("_calls", "_finish", "_ids", "_index", "_kind", "_model", "_started", "_usage", "done")

    def __init__(self, model: str = "") -> None:
        self._model = model  # the name the client sees; else the upstream's
        self._started = False
        self._index = -1  # the block open now (or last closed)
        self._kind: str | None = None  # its kind while open: "text", "thinking", "tool"
        self._calls: dict[int, int] = {}  # chat tool-call index -> our block index
        self._ids: dict[int, str] = {}  # chat tool-call index -> the id of the call there now
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self.done = False

    def feed_data(self, data: bytes) -> bytes:
        """One SSE ``data`` payload from the upstream; ``[DONE]`` finishes the message."""
        if data.strip() == DONE:
            return self.finish()
        return self.feed(orjson.loads(data))

    def _start(self, chunk: Mapping[str, Any]) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": "msg_" + str(chunk.get("id") or new_id("")),
            "type": "message",
            "role": "assistant",
            "model": self._model or chunk.get("model") or "",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse("message_start", {"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if self._kind is None:
            return b""
        self._kind = None
        return sse("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._kind = kind
        return out + sse(
            "content_block_start", {"type": "content_block_start", "index": self._index, "content_block": block}
        )

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def feed(self, chunk: Mapping[str, Any]) -> bytes:
        if self.done:
            return b""
        failure = chunk.get("error")
        if isinstance(failure, Mapping):  # an upstream's mid-stream error frame
            return self.error(str(failure.get("message") or "upstream error"))
        out = b"" if self._started else self._start(chunk)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                if self._kind != "thinking":
                    out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                out += self._delta(self._index, {"type": "thinking_delta", "thinking": reasoning})
            if delta.get("content"):
                if self._kind != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out += self._delta(self._index, {"type": "text_delta", "text": delta["content"]})
            for call in delta.get("tool_calls") or []:
                out += self._tool_fragment(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def _tool_fragment(self, call: Mapping[str, Any]) -> bytes:
        out = b""
        position = call.get("index", 0)
        fn = call.get("function") or {}
        fresh = call.get("id") and call["id"] != self._ids.get(position)
        if position not in self._calls or fresh:  # some servers number every call 0: a new id is a new call
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": fn.get("name") or "",
                "input": {},
            }
            out += self._open("tool", block)
            self._calls[position] = self._index
            self._ids[position] = block["id"]
        if fn.get("arguments"):
            # a late fragment of an earlier call still names its own block (the SDK joins by index)
            out += self._delta(self._calls[position], {"type": "input_json_delta", "partial_json": fn["arguments"]})
        return out

    def finish(self) -> bytes:
        """The upstream ended: close the open block and the message (stop reason and usage)."""
        if self.done:
            return b""
        out = b"" if self._started else self._start({})
        out += self._close()
        self.done = True
        delta = {"stop_reason": STOP_REASONS.get(self._finish or "stop", "end_turn"), "stop_sequence": None}
        totals = usage(self._usage)
        out += sse("message_delta", {"type": "message_delta", "delta": delta, "usage": totals})
        return out + sse("message_stop", {"type": "message_stop"})

    def error(self, message: str, kind: str = "api_error") -> bytes:
        """A mid-stream failure, as Anthropic reports one (the SDK raises it)."""
        self.done = True
        return sse("error", {"type": "error", "error": {"type": kind, "message": message}})
