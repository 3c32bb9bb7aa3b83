"""How the page gets plotly on a first visit: the server compresses it at startup rather than in
the first visitor's request."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tests.helpers import running_app, sqlite_url

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
