"""What the gateway needs to know about one client-facing API: its call type, which upstream API
it speaks, its usage object, its stream accumulator and its error shape.

The relay is the same for every door (pass-through: client API == upstream API); only these
pieces differ, so they are plain data here rather than branches in the relay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from modelmeter.metering.usage import Usage


class StreamAcc(Protocol):
    """Reads each streamed ``data:`` payload once: usage, ids, the reassembled answer."""

    id: str | None
    model: str | None
    usage: Usage
    chunks: int
    last_usage_only: bool

    def add(self, data: bytes) -> int: ...  # how many pieces of new content it carried
    def finished(self) -> bool: ...  # the stream's own end marker was seen
    def failure(self) -> str | None: ...  # the stream said the answer failed (an error event)
    def all_text(self) -> str: ...
    def response(self) -> dict[str, Any]: ...


ErrorShape = Callable[[str, str, str | None, str | None], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class FrontDoor:
    call_type: str  # the record's call type
    api: str  # the API the upstream must speak: "chat" | "messages" | "responses"
    usage: Callable[[Any], Usage]  # from a whole answer's "usage" object
    accumulator: Callable[[str], StreamAcc]  # made with the call type
    error_body: ErrorShape
    done_marker: bool = False  # streams end with "data: [DONE]" (OpenAI chat/completions)
    stream_options: bool = False  # "stream_options.include_usage" is how usage is asked for
