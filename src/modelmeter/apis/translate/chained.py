"""Two translations through chat, for the pairs with no direct translator (Responses <-> Messages).

Every front door already translates to and from chat, so a Responses client in front of a Messages
upstream is Responses -> chat -> Messages on the way up and back the same way: requests and
answers are composed functions, and a stream is two stream translators in a row, the first's SSE
output parsed and fed to the second. The chat in the middle is never sent anywhere; usage for the
record is still read from the upstream's own answer by the gateway, not from these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from modelmeter.apis.translate import chat_to_messages as c2m
from modelmeter.apis.translate import chat_to_responses as c2r
from modelmeter.apis.translate import messages_to_chat as m2c
from modelmeter.apis.translate import responses_to_chat as r2c
from modelmeter.apis.translate.chat_stream import MessagesToChatStream
from modelmeter.apis.translate.messages_stream import ChatToMessagesStream
from modelmeter.apis.translate.responses_chat_stream import ResponsesToChatStream
from modelmeter.apis.translate.responses_stream import ChatToResponsesStream
from modelmeter.sse import DONE, SSEParser


class Translator(Protocol):
    done: bool

    def feed_data(self, data: bytes) -> bytes: ...
    def finish(self) -> bytes: ...
    def error(self, message: str) -> bytes: ...


class ChainedStream:
    """``first`` turns upstream events into chat chunks; ``second`` turns those into the client's events."""

    def __init__(self, first: Translator, second: Translator) -> None:
        self.first = first
        self.second = second
        self._parser = SSEParser(1 << 30)  # our own output: whole events, no size limit needed

    @property
    def done(self) -> bool:
        return self.second.done

    @done.setter
    def done(self, value: bool) -> None:
        self.first.done = self.second.done = value

    def _pass(self, middle: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._parser.feed(middle) if middle else ():
            if event.data is None or self.second.done:
                continue
            out.append(self.second.finish() if event.data.strip() == DONE else self.second.feed_data(event.data))
        return b"".join(out)

    def feed_data(self, data: bytes) -> bytes:
        return self._pass(self.first.feed_data(data))

    def finish(self) -> bytes:
        out = self._pass(self.first.finish())
        return out + self.second.finish()  # a no-op when the first's [DONE] already finished it

    def error(self, message: str) -> bytes:
        self.first.done = True  # nothing more goes through the chain
        return self.second.error(message)


# -- Responses client -> Messages upstream ------------------------------------------------------


def responses_to_messages_request(body: Mapping[str, Any], model: str) -> dict[str, Any]:
    return c2m.request(r2c.request(body, model), model)


def responses_to_messages_answer(message: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    return r2c.answer(c2m.answer(message), body)


def responses_to_messages_stream(body: Mapping[str, Any]) -> ChainedStream:
    return ChainedStream(MessagesToChatStream(include_usage=True), ChatToResponsesStream(body))


# -- Messages client -> Responses upstream ------------------------------------------------------


def messages_to_responses_request(body: Mapping[str, Any], model: str) -> dict[str, Any]:
    return c2r.request(m2c.request(body, model), model)


def messages_to_responses_answer(response: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    return m2c.answer(c2r.answer(response))


def messages_to_responses_stream(body: Mapping[str, Any]) -> ChainedStream:
    return ChainedStream(ResponsesToChatStream(include_usage=True), ChatToMessagesStream())
