"""Chat chunks from the upstream -> the Responses event stream the client reads.

Responses streams output items one after another (a message with its ``output_text`` part, then
each ``function_call``), each announced with ``output_item.added`` and closed with ``.done`` events
that repeat the whole item; every event carries a ``sequence_number``. The last event,
``response.completed`` (``response.incomplete`` when the length ran out), holds the full response
with usage, which chat sends only in its last chunk.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from modelmeter.apis.translate.responses_to_chat import (
    call_item,
    envelope,
    finished,
    message_item,
    reasoning_item,
    usage,
)
from modelmeter.apis.translate.wire import new_id, sse
from modelmeter.sse import DONE


class ChatToResponsesStream:
    """Feed chat.completion.chunk dicts (or raw ``data`` bytes); get Responses SSE bytes back."""

    def __init__(self, body: Mapping[str, Any], model: str = "") -> None:
        self._body = body  # the client's request: the response echoes its settings
        self._model = model  # the name the client sees; else the upstream's
        self._seq = 0
        self._response: dict[str, Any] | None = None
        self._open: dict[str, Any] | None = None  # the output item being streamed
        self._parts: list[str] = []  # its text or arguments so far, joined once when it closes (not per chunk)
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> its function_call item
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self.done = False

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **payload}
        self._seq += 1
        return sse(kind, payload)

    def _start(self, chunk: Mapping[str, Any]) -> bytes:
        created = chunk.get("created") or int(time.time())
        response_id = "resp_" + str(chunk.get("id") or new_id(""))
        self._response = envelope(self._body, response_id, self._model or chunk.get("model") or "", created)
        out = self._event("response.created", {"response": self._response})
        return out + self._event("response.in_progress", {"response": self._response})

    def _add(self, item: dict[str, Any]) -> bytes:
        assert self._response is not None
        out = self._close()
        self._open = item
        self._parts = []
        self._response["output"].append(item)
        added = {**item, "status": "in_progress"}
        if item["type"] in ("message", "reasoning"):
            added["content"] = []
        elif item["type"] == "function_call":
            added["arguments"] = ""
        return out + self._event("response.output_item.added", {"output_index": self._index, "item": added})

    @property
    def _index(self) -> int:
        assert self._response is not None
        return len(self._response["output"]) - 1

    def _close(self) -> bytes:
        item = self._open
        if item is None:
            return b""
        self._settle(item)
        self._open = None
        # the open item is always the last one in the output list
        where = {"item_id": item["id"], "output_index": self._index}
        out = b""
        if item["type"] == "message":
            part = item["content"][0]
            out += self._event(
                "response.output_text.done", {**where, "content_index": 0, "text": part["text"], "logprobs": []}
            )
            out += self._event("response.content_part.done", {**where, "content_index": 0, "part": part})
        elif item["type"] == "reasoning":
            text = item["content"][0]["text"]
            out += self._event("response.reasoning_text.done", {**where, "content_index": 0, "text": text})
        else:
            done = {**where, "arguments": item["arguments"], "name": item["name"]}
            out += self._event("response.function_call_arguments.done", done)
        item["status"] = "completed"
        return out + self._event("response.output_item.done", {"output_index": self._index, "item": item})

    def _settle(self, item: dict[str, Any]) -> None:
        if item["type"] in ("message", "reasoning"):
            item["content"][0]["text"] = "".join(self._parts)
        else:
            item["arguments"] = "".join(self._parts)

    def feed_data(self, data: bytes) -> bytes:
        if data.strip() == DONE:
            return self.finish()
        return self.feed(orjson.loads(data))

    def feed(self, chunk: Mapping[str, Any]) -> bytes:
        if self.done:
            return b""
        failure = chunk.get("error")
        if isinstance(failure, Mapping):  # an upstream's mid-stream error frame
            return self.error(str(failure.get("message") or "upstream error"))
        out = b"" if self._response is not None else self._start(chunk)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")  # vLLM, llama.cpp
            if reasoning:
                out += self._reasoning(reasoning)
            if delta.get("content"):
                out += self._text(delta["content"])
            for call in delta.get("tool_calls") or []:
                out += self._call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open["type"] != "message":
            out += self._add(message_item("", new_id("msg_")))
            where = {"item_id": self._open_id, "output_index": self._index, "content_index": 0}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out += self._event("response.content_part.added", {**where, "part": part})
        self._parts.append(text)
        where = {"item_id": self._open_id, "output_index": self._index, "content_index": 0}
        return out + self._event("response.output_text.delta", {**where, "delta": text, "logprobs": []})

    def _reasoning(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open["type"] != "reasoning":
            out += self._add(reasoning_item("", new_id("rs_")))
        self._parts.append(text)
        where = {"item_id": self._open_id, "output_index": self._index, "content_index": 0}
        return out + self._event("response.reasoning_text.delta", {**where, "delta": text})

    @property
    def _open_id(self) -> str:
        assert self._open is not None
        return str(self._open["id"])

    def _call(self, call: Mapping[str, Any]) -> bytes:
        out = b""
        position = call.get("index", 0)
        fn = call.get("function") or {}
        item = self._calls.get(position)
        if item is None or (call.get("id") and call["id"] != item["call_id"]):  # some servers number every call 0
            item = call_item(new_id("fc_"), call.get("id") or new_id("call_"), fn.get("name") or "", "")
            self._calls[position] = item
            out += self._add(item)
        if fn.get("arguments"):
            if item is self._open:
                self._parts.append(fn["arguments"])
                where = {"item_id": item["id"], "output_index": self._index}
                out += self._event("response.function_call_arguments.delta", {**where, "delta": fn["arguments"]})
            else:  # a late fragment of a call already closed only joins the final item
                item["arguments"] += fn["arguments"]
        return out

    def finish(self) -> bytes:
        """The upstream ended: close the open item and send the whole response with usage."""
        if self.done:
            return b""
        out = b"" if self._response is not None else self._start({})
        out += self._close()
        self.done = True
        assert self._response is not None
        self._response["usage"] = usage(self._usage)
        response = finished(self._response, self._finish)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return out + self._event(kind, {"response": response})

    def error(self, message: str, code: str = "server_error") -> bytes:
        """A mid-stream failure: ``response.failed`` with the error, as the Responses API reports one."""
        out = b"" if self._response is not None else self._start({})
        self.done = True
        if self._open is not None:  # the failed response still shows what had come
            self._settle(self._open)
        assert self._response is not None
        self._response.update(status="failed", error={"code": code, "message": message})
        return out + self._event("response.failed", {"response": self._response})
