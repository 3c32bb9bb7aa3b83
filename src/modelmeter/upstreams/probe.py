"""Is a deployment's upstream reachable? A cached GET of its /models, for the model cards."""

from __future__ import annotations

import time
from collections.abc import Callable

from modelmeter.config import Deployment
from modelmeter.upstreams.client import Timeouts, UpstreamClient, UpstreamError
from modelmeter.upstreams.headers import upstream_headers


class Probe:
    def __init__(self, client: UpstreamClient, base_url: Callable[[Deployment], str | None], ttl: float = 30.0) -> None:
        self._client = client
        self._base_url = base_url
        self._ttl = ttl
        self._cache: dict[str, tuple[float, bool]] = {}

    async def reachable(self, dep: Deployment) -> bool:
        base = self._base_url(dep)
        if base is None:
            return False
        hit = self._cache.get(base)
        if hit and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        try:
            resp = await self._client.get(base + "/models", upstream_headers(dep), Timeouts(total=2.0, connect=1.0))
            await resp.read()
            ok = resp.status < 500
        except UpstreamError:
            ok = False
        self._cache[base] = (time.monotonic(), ok)
        return ok
