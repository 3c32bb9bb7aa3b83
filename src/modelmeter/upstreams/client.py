"""Upstream HTTP behind a small interface of our own (the test seam), and its aiohttp implementation.

aiohttp was chosen by measurement: a plain ASGI route relaying through a pooled aiohttp session ran
about ten times the requests/s of a FastAPI route calling httpx on this machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp


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
    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> UpstreamResponse: ...

    async def get(
        self, url: str, headers: Mapping[str, str], timeouts: Timeouts
    ) -> UpstreamResponse: ...

    async def close(self) -> None: ...


class _AiohttpResponse:
    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except TimeoutError as exc:
            raise UpstreamError(
                "timeout", "the upstream timed out while sending its response"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError("protocol", f"the upstream broke off its response: {exc}") from exc
        finally:
            self._resp.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamError("timeout", "the upstream timed out mid-stream") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError("protocol", f"the upstream broke off the stream: {exc}") from exc

    def close(self) -> None:
        self._resp.close()


class AiohttpUpstream:
    """One pooled aiohttp session for every upstream; created lazily inside the running loop."""

    def __init__(self, limit: int = 1000) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=0, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def _request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        timeout = aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect)
        stale_retry = True
        while True:
            try:
                resp = await self._get_session().request(
                    method, url, data=body, headers=headers, timeout=timeout
                )
                break
            except TimeoutError as exc:
                raise UpstreamError(
                    "timeout", f"the upstream at {_origin(url)} did not answer in time"
                ) from exc
            except aiohttp.ClientConnectorError as exc:
                raise UpstreamError(
                    "connect",
                    f"cannot reach the upstream at {_origin(url)}: {exc.os_error.strerror or exc}",
                ) from exc
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A pooled keep-alive connection the upstream had already closed (llama.cpp's
                # server does this after a stream): nothing was answered, so send it once more
                # on a fresh connection.
                if stale_retry:
                    stale_retry = False
                    continue
                raise UpstreamError(
                    "protocol", f"the upstream at {_origin(url)} closed the connection: {type(exc).__name__}"
                ) from exc
            except aiohttp.ClientError as exc:
                raise UpstreamError(
                    "protocol", f"the upstream at {_origin(url)} failed: {type(exc).__name__}"
                ) from exc
        return _AiohttpResponse(resp)

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> UpstreamResponse:
        return await self._request("POST", url, body, headers, timeouts)

    async def get(
        self, url: str, headers: Mapping[str, str], timeouts: Timeouts
    ) -> UpstreamResponse:
        return await self._request("GET", url, None, headers, timeouts)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _origin(url: str) -> str:
    """scheme://host:port only: never echo a path or query that might carry a secret."""
    parts = url.split("/", 3)
    return "/".join(parts[:3])
