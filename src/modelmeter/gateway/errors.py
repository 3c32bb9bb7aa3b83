"""OpenAI-shaped errors and the small ASGI helpers the gateway answers with."""

from __future__ import annotations

from typing import Any

import orjson

from modelmeter.asgi import Send
from modelmeter.error_shape import error_body as error_body

JSON_HEADERS = [(b"content-type", b"application/json")]


class APIError(Exception):
    """An error the gateway answers with, in OpenAI's shape and with the right status."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def upstream_error_message(status: int, body: bytes) -> tuple[str, dict[str, Any]]:
    """The upstream's own error message and an OpenAI-shaped body to pass to the client."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        err = parsed["error"]
        message = str(err.get("message") or f"upstream error {status}")
        return message, parsed
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        message = parsed["error"]
    else:
        text = body[:500].decode("utf-8", "replace").strip()
        message = f"upstream returned HTTP {status}" + (f": {text}" if text else "")
    type_ = "invalid_request_error" if status < 500 else "upstream_error"
    return message, error_body(message, type_, None, f"upstream_{status}")


async def send_json(send: Send, status: int, body: bytes,
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": headers if headers is not None else JSON_HEADERS})
    await send({"type": "http.response.body", "body": body})
