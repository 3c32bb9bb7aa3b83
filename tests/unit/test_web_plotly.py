"""How the page gets plotly on a first visit: the server compresses it at startup rather than in
the first visitor's request."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tests.helpers import asgi_request, running_app, sqlite_url

from modelmeter.web import routes

DEPS = [{"name": "gpt", "model": "gpt-4o-mini", "api_base": "http://upstream.invalid/v1"}]


@pytest.mark.asyncio
async def test_the_bundle_is_compressed_at_startup_not_on_the_first_request(tmp_path: Path) -> None:
    if routes.plotly_path() is None:
        pytest.skip("plotly is not installed")
    routes._plotly_bytes.cache_clear()
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS):
        deadline = time.monotonic() + 10
        while routes._plotly_bytes.cache_info().currsize == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert routes._plotly_bytes.cache_info().currsize == 1  # no request for it was made


@pytest.mark.asyncio
async def test_a_revalidation_of_the_bundle_is_a_304_without_the_bytes(tmp_path: Path) -> None:
    bundle = routes.plotly_path()
    if bundle is None:
        pytest.skip("plotly is not installed")
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS) as h:
        path = "/static/vendor/plotly.min.js"
        first = await asgi_request(h.app, "GET", path, headers={"accept-encoding": "gzip"})
        assert first.status == 200 and len(first.body) > 1_000_000
        etag = first.headers["etag"]
        again = await asgi_request(h.app, "GET", path, headers={"accept-encoding": "gzip", "if-none-match": etag})
        assert again.status == 304 and again.body == b"" and again.headers["etag"] == etag
        # Another tag (an older plotly's), or none: the bundle.
        other = await asgi_request(h.app, "GET", path, headers={"if-none-match": 'W/"0123", W/"4567"'})
        assert other.status == 200 and other.body == bundle.read_bytes()
