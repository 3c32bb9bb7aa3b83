"""A Content-Security-Policy for the OpenAPI page at /docs.

Swagger UI's page starts it with an inline script. Rather than allow every inline script, the
policy names the page's own inline scripts by their sha256, computed from the page as it is sent,
so it stays right whatever Swagger UI version or options render the page.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import MutableMapping
from typing import Any

from modelmeter.asgi import ASGIApp, Receive, Scope, Send

DOCS_PATH = "/docs"
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)
# Swagger UI styles elements inline and draws its icons from data: URIs.
_POLICY = ("default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
           "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def docs_policy(page: bytes) -> str:
    hashes = "".join(f" 'sha256-{base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()}'"
                     for m in _INLINE_SCRIPT.finditer(page))
    return _POLICY.format(hashes=hashes)


class DocsCSP:
    """ASGI middleware: the /docs page (small) is held until its end, then sent with its policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != DOCS_PATH:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def holding(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body" or not start:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-security-policy"]
            headers += [(b"content-security-policy", docs_policy(body).encode()),
                        (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, holding)
