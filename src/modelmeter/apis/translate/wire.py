"""What every translator shares: the error for untranslatable input, SSE framing and ids."""

from __future__ import annotations

import secrets
from typing import Any

import orjson


class TranslationError(ValueError):
    """The request cannot be expressed in the upstream's API: the caller answers 400 with ``param``."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def sse(event: str | None, payload: Any) -> bytes:
    """One Server-Sent Event, ``event:`` line included when named (Anthropic and Responses name them)."""
    data = orjson.dumps(payload)
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads_object(text: str | None, param: str) -> dict[str, Any]:
    """Tool-call arguments: JSON text that must hold an object (Anthropic's ``input`` is one)."""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise TranslationError(f"{param} is not valid JSON", param) from None
    if not isinstance(value, dict):
        raise TranslationError(f"{param} must be a JSON object", param)
    return value


def lenient_object(text: str | None) -> dict[str, Any]:
    """Arguments a model produced: invalid JSON is the model's output, kept rather than refused."""
    try:
        return loads_object(text, "arguments")
    except TranslationError:
        return {"_raw_arguments": text}


def text_of(content: Any) -> str:
    """The text of a string or of a list of text-like parts (``text``, ``input_text``, ``output_text``)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
