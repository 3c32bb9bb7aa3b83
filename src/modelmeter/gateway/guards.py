"""Checks that keep other web pages and the gateway itself from spending upstream credit.

* Content type: a ``/v1`` call must say ``application/json``. A web page can send a cross-site POST
  without asking first (no CORS preflight) only as ``text/plain``, a form type or with no type
  at all: refusing those (415) means no page can call a local gateway behind the user's back.
* Host: a server bound to loopback only answers only loopback names (``localhost``, ``127.0.0.1``,
  ``[::1]``, any port). A page on a DNS name rebound to 127.0.0.1 sends its own name as ``Host``,
  so it is refused (421) before it reaches anything: ``--no-auth`` has no key to stop it.
* Hops: every request sent upstream carries ``x-modelmeter-hop``, the ids of the gateways it went
  through. A request that comes back with our own id, or after MAX_HOPS gateways, is a loop (a
  deployment pointing at the gateway itself): refused with a 508 before it goes round again.
"""

from __future__ import annotations

import ipaddress
import uuid

import orjson

from modelmeter.asgi import Scope, Send
from modelmeter.gateway.errors import APIError, error_body, send_json

HOP_HEADER = b"x-modelmeter-hop"
MAX_HOPS = 8
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def check_json_content_type(content_type: bytes | None) -> None:
    """415 unless the media type is ``application/json`` (parameters such as charset allowed)."""
    media = (content_type or b"").split(b";", 1)[0].strip().lower()
    if media != b"application/json":
        shown = (content_type or b"").decode("latin-1")[:100] or "none"
        raise APIError(
            415,
            f"Send the request body as JSON with 'Content-Type: application/json' (got {shown}).",
            param="content-type",
            code="unsupported_media_type",
        )


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(value: bytes) -> str:
    """The name of a ``Host`` header, without its port: ``[::1]:8000`` -> ``::1``."""
    host = value.decode("latin-1").strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


_SEEN_LOOPBACK: set[bytes] = set()  # Host values already found to be loopback (a few, reused)


def foreign_host(scope: Scope) -> str | None:
    """The ``Host`` a request names when that is not a loopback name (None: it is, or none given)."""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            if value in _SEEN_LOOPBACK:
                return None
            host = host_name(value)
            if not is_loopback(host):
                return host
            if len(_SEEN_LOOPBACK) < 64:
                _SEEN_LOOPBACK.add(value)
            return None
    return None


async def refuse_host(send: Send, host: str) -> None:
    body = error_body(
        f"This server listens on loopback only and answers to localhost, 127.0.0.1 "
        f"and [::1], not to the host name {host[:100]!r}.",
        "invalid_request_error",
        None,
        "misdirected_request",
    )
    await send_json(send, 421, orjson.dumps(body))


class HopGuard:
    """This gateway's id, and the hop header a call carries on to its upstream."""

    def __init__(self, instance_id: str | None = None) -> None:
        self.instance_id = instance_id or uuid.uuid4().hex[:16]

    def next_hop(self, incoming: bytes | None) -> str:
        """The header value to send upstream; a 508 if the request has been here, or too far."""
        hops = [h.strip() for h in incoming.decode("latin-1").split(",")] if incoming else []
        if self.instance_id in hops or len(hops) >= MAX_HOPS:
            raise APIError(
                508,
                "This request has come back to the gateway it was sent from: a "
                "deployment's api_base points at this gateway (or a chain of "
                f"{len(hops)} gateways). Point it at the real upstream.",
                "invalid_request_error",
                code="loop_detected",
            )
        return ",".join([*hops, self.instance_id])
