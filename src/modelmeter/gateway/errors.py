"""OpenAI-shaped errors and the small ASGI helpers the gateway answers with."""

from __future__ import annotations

from typing import Any

import orjson

from modelmeter.asgi import Send
from modelmeter.error_shape import error_body as error_body

JSON_HEADERS = [(b"content-type", b"application/json")]


class APIError(Exception):
    """An error the gateway answers with, in OpenAI's shape and with the right status."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
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
        if not _openai_shaped(err):
            parsed = {**parsed, "error": _normalised(err, message, status)}
        return message, parsed
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        message = parsed["error"]
    else:
        text = body[:500].decode("utf-8", "replace").strip()
        message = f"upstream returned HTTP {status}" + (f": {text}" if text else "")
    type_ = "invalid_request_error" if status < 500 else "upstream_error"
    return message, error_body(message, type_, None, f"upstream_{status}")


def relayed_error(status: int, data: bytes) -> tuple[str, dict[str, Any], bytes]:
    """An upstream's error: its message, the body to store, and the bytes to answer with (the
    upstream's own when already in OpenAI's shape, else the normalised body)."""
    message, err = upstream_error_message(status, data)
    try:
        same = orjson.loads(data) == err
    except orjson.JSONDecodeError:
        same = False
    return message, err, data if same else orjson.dumps(err)


def _openai_shaped(err: dict[str, Any]) -> bool:
    return (
        isinstance(err.get("message"), str)
        and isinstance(err.get("type"), str)
        and all(isinstance(err.get(k), str | None) for k in ("param", "code"))
    )


def _normalised(err: dict[str, Any], message: str, status: int) -> dict[str, Any]:
    """OpenAI's shape with string codes (SDKs and clients expect them): llama.cpp, for one,
    answers ``"code": 501``, which becomes ``"upstream_501"``."""
    code, param, type_ = err.get("code"), err.get("param"), err.get("type")
    if code is not None and not isinstance(code, str):
        code = f"upstream_{code}" if isinstance(code, int) else f"upstream_{status}"
    return {
        **err,
        "message": message,
        "type": type_ if isinstance(type_, str) else "invalid_request_error" if status < 500 else "upstream_error",
        "param": param if isinstance(param, str) else None,
        "code": code,
    }


async def send_json(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": headers if headers is not None else JSON_HEADERS}
    )
    await send({"type": "http.response.body", "body": body})
