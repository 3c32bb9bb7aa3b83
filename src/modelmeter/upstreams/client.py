"""The gateway's upstream client behind the seam in ``base``.

aiohttp was chosen by measurement over httpx (a plain ASGI route relaying through a pooled aiohttp
session ran about ten times the requests/s of a FastAPI route calling httpx here). POSTs to plain
``http://`` upstreams (self-hosted servers: vLLM, llama.cpp, the embedded models), where the
gateway's own cost per call matters most, go through ``LeanHTTP`` (lean.py), three times cheaper;
``https://`` upstreams (hosted providers: TLS, proxies, a network round trip that dwarfs the
difference) and GETs stay on aiohttp.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp

from modelmeter.upstreams.base import Timeouts, UpstreamClient, UpstreamError, UpstreamResponse
from modelmeter.upstreams.base import origin as _origin
from modelmeter.upstreams.lean import LeanHTTP

__all__ = ["HTTPUpstream", "Timeouts", "UpstreamClient", "UpstreamError", "UpstreamResponse"]


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
            raise UpstreamError("timeout", "the upstream timed out while sending its response") from exc
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


class HTTPUpstream:
    """The gateway's upstream client: POSTs on the lean pooled client (``LeanHTTP``), GETs on one
    pooled aiohttp session, created lazily inside the running loop. ``lean=False``: all on aiohttp.
    """

    def __init__(self, limit: int = 1000, *, lean: bool = True) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._lean = LeanHTTP(limit) if lean else None

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
                resp = await self._get_session().request(method, url, data=body, headers=headers, timeout=timeout)
                break
            except aiohttp.ConnectionTimeoutError as exc:  # no connection: the request never reached it
                raise UpstreamError(
                    "connect", f"the upstream at {_origin(url)} did not accept a connection in time"
                ) from exc
            except TimeoutError as exc:
                raise UpstreamError("timeout", f"the upstream at {_origin(url)} did not answer in time") from exc
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
                raise UpstreamError("protocol", f"the upstream at {_origin(url)} failed: {type(exc).__name__}") from exc
        return _AiohttpResponse(resp)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts) -> UpstreamResponse:
        if self._lean is not None and url.startswith("http://"):
            return await self._lean.request(b"POST", url, body, headers, timeouts)
        return await self._request("POST", url, body, headers, timeouts)

    async def get(self, url: str, headers: Mapping[str, str], timeouts: Timeouts) -> UpstreamResponse:
        return await self._request("GET", url, None, headers, timeouts)

    async def request(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeouts: Timeouts
    ) -> UpstreamResponse:
        """Any other method (the Responses API's GET/DELETE/cancel by id: apis/response_ids.py)."""
        return await self._request(method, url, body, headers, timeouts)

    async def close(self) -> None:
        if self._lean is not None:
            self._lean.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
