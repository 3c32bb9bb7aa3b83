"""The headers of a /v1 answer that come from the upstream: the request id, and an allowlist.

Every answer carries ``x-request-id`` (the SDKs read it: ``response._request_id`` in openai-python),
and it is the record's ``request_id``, so what a client logs finds the call in the Usage tab. Other
upstream headers are passed on only when named here: headers a client uses to pace itself or to
report a problem upstream; nothing that could identify the upstream account (``openai-organization``,
cookies) or describe the connection.
"""

from __future__ import annotations

from collections.abc import Mapping

REQUEST_ID = "x-request-id"
PASSED = frozenset({"openai-processing-ms", "openai-version", "retry-after"})
PASSED_PREFIXES = ("x-ratelimit-",)
MAX_VALUE_CHARS = 256  # a request id or a rate-limit figure is short; anything longer is not one


def _clean(value: str | None) -> str | None:
    """A header value fit to pass on: printable ASCII (no CR/LF), not empty, not huge."""
    if not value:
        return None
    value = value.strip()
    if not value or len(value) > MAX_VALUE_CHARS or not all(" " <= ch <= "~" for ch in value):
        return None
    return value


def usable_id(value: object) -> str | None:
    """An id from an answer's body, if it can go in a header as it is (else the record's id is
    used: an upstream's id must never inject a header or break the response)."""
    return _clean(value) if isinstance(value, str) else None


def upstream_request_id(headers: Mapping[str, str]) -> str | None:
    """The upstream's ``x-request-id``, when it sent a usable one."""
    return _clean(headers.get(REQUEST_ID))


def passed_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """The allowlisted upstream headers, as ASGI header pairs (lower-case names)."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        low = name.lower()
        if low in PASSED or low.startswith(PASSED_PREFIXES):
            clean = _clean(value)
            if clean is not None:
                out.append((low.encode("ascii", "ignore"), clean.encode("ascii")))
    return out


def request_id_header(request_id: str) -> tuple[bytes, bytes]:
    return (REQUEST_ID.encode(), request_id.encode("ascii", "replace"))
