"""Cross-site request refusal for everything but /v1: state-changing requests must come from our own
origin.

A browser sends ``Sec-Fetch-Site`` and ``Origin`` with every POST, PUT, PATCH and DELETE; a page on
another site (another port of localhost is another origin) is refused with a 403 in the API's JSON
error shape, whatever the content type and whatever cookies the browser would attach. Clients that
are not browsers (the CLI, scripts with a bearer token) send neither header and are let through: they
cannot be driven by someone else's page. This holds with or without ``--no-auth``, and does not rest
on the framework's own content-type checks.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson

from modelmeter.asgi import ASGIApp, Receive, Scope, Send
from modelmeter.error_shape import error_body

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SameOriginGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS and not same_origin(scope):
            body = orjson.dumps(
                error_body(
                    "Cross-site request refused: state-changing requests must come from this server's own "
                    "pages, or from a client without an Origin header (e.g. with 'Authorization: Bearer').",
                    "permission_error",
                    None,
                    "cross_site_request",
                )
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def same_origin(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    fetch_site = headers.get(b"sec-fetch-site")
    if fetch_site is not None:
        # The browser's own verdict, which a reverse proxy cannot disturb (behind one, Origin names
        # the public host while Host may be the loopback address the proxy connects to). Same-site
        # (another port or subdomain) is refused too.
        return fetch_site in (b"same-origin", b"none")
    origin = headers.get(b"origin")
    if origin is None:
        return True  # not sent by a browser's cross-origin request
    host = headers.get(b"host")
    theirs = _host_port(origin.decode("latin-1"))
    ours = _host_port("//" + host.decode("latin-1")) if host else None
    if theirs is None or ours is None or theirs[0] != ours[0]:
        return False
    # A Host without a port is a default port: of http or https, as a TLS proxy in front may have
    # changed the scheme.
    return theirs[1] == ours[1] if ours[1] is not None else theirs[1] in _DEFAULT_PORTS.values()


def _host_port(url: str) -> tuple[str, int | None] | None:
    """(host, port) of an origin or a Host header, an origin's default port filled in; None if
    unreadable (``Origin: null`` from sandboxed frames and file pages, too)."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port
