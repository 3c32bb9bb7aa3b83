"""The upstream seam: the small interface the gateway calls upstreams through (tests replace it),
its timeouts and its one error type."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol


class UpstreamError(Exception):
    """The upstream could not be reached (``connect``), took too long (``timeout``) or broke the
    HTTP exchange (``protocol``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class Timeouts:
    total: float = 600.0
    connect: float = 10.0


class UpstreamResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class UpstreamClient(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts) -> UpstreamResponse: ...

    async def get(self, url: str, headers: Mapping[str, str], timeouts: Timeouts) -> UpstreamResponse: ...

    async def close(self) -> None: ...


def origin(url: str) -> str:
    """scheme://host:port only: never echo a path or query that might carry a secret, nor a
    ``user:password@``."""
    parts = url.split("/", 3)
    if len(parts) > 2:
        parts[2] = parts[2].rsplit("@", 1)[-1]
    return "/".join(parts[:3])
