"""Refuse NUL characters in /api paths and query parameters before any handler sees them.

PostgreSQL cannot hold NUL in text: a tag, request id, key alias, cursor or deployment name with one
reached the query and came back as a 500 with a traceback (issue #18.14). No legitimate parameter
contains one, so it is a 400 in the API's error shape, for SQLite too (the same answer everywhere).
The /v1 hot path does not pass through here.
"""

from __future__ import annotations

import orjson

from modelmeter.asgi import ASGIApp, Receive, Scope, Send
from modelmeter.gateway.errors import error_body

_BODY = orjson.dumps(
    error_body(
        "A NUL character (%00) is not allowed in the path or the query parameters.",
        "invalid_request_error",
        None,
        "invalid_value",
    )
)


class RejectNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (b"%00" in scope.get("query_string", b"") or "\x00" in scope["path"]):
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": _BODY})
            return
        await self.app(scope, receive, send)
