"""Today's OpenAI endpoints as front doors: /v1/chat/completions, /v1/completions, /v1/embeddings."""

from __future__ import annotations

from modelmeter.apis.base import FrontDoor
from modelmeter.error_shape import error_body
from modelmeter.metering.usage import StreamAccumulator, Usage


def _door(call_type: str) -> FrontDoor:
    return FrontDoor(
        call_type=call_type,
        api="chat",
        usage=Usage.from_openai,
        accumulator=StreamAccumulator,
        error_body=error_body,
        done_marker=True,
        stream_options=True,
    )


CHAT = _door("chat")
COMPLETION = _door("completion")
EMBEDDING = _door("embedding")
