"""With one million records the Usage tab is usable within one second (opt-in: slow to seed).

Run with ``MODELMETER_TEST_MILLION=1 pytest tests/browser/test_million.py`` (seeding takes ~30 s).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import BrowserContext

from tests.helpers import ADMIN_KEY, ServerProcess, sqlite_url, write_config

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        os.environ.get("MODELMETER_TEST_MILLION") != "1",
        reason="set MODELMETER_TEST_MILLION=1 (seeds 1,000,000 records)",
    ),
]
N = 1_000_000
# In-page timestamps (performance.now()) of the first log row, the filled cards and the charts.
OBSERVE = """
window.__t = {};
new MutationObserver(() => {
  const t = Math.round(performance.now());
  if (!__t.rows && document.querySelector('table.log tbody tr.row')) __t.rows = t;
  if (!__t.cards && document.querySelector('.cards') && !document.querySelector('.cards .skeleton')) __t.cards = t;
  if (!__t.charts && document.querySelector('.plot .main-svg')) __t.charts = t;
}).observe(document, { subtree: true, childList: true });
"""


def seed(url: str, n: int = N) -> None:
    """n records over the last 7 days, written the way the recorder writes them (with rollups)."""
    from modelmeter.storage.database import Database
    from modelmeter.storage.migrations import migrate
    from modelmeter.storage.records import insert_rows

    db = Database(url)
    migrate(db)
    now = int(time.time() * 1e6)
    span = 7 * 86400 * 1_000_000
    rnd = random.Random(7)
    batch: list[dict[str, Any]] = []
    for i in range(n):
        start = now - span + span * i // n
        ok = rnd.random() > 0.02
        p, c, lat = rnd.randint(10, 800), rnd.randint(5, 400), rnd.lognormvariate(6, 0.5)
        batch.append(
            {
                "id": f"{start:016x}{i:012x}",
                "request_id": f"chatcmpl-{i:024x}",
                "deployment": "big",
                "model": "big",
                "model_id": "m",
                "provider": "openai",
                "call_type": "chat",
                "api_base": "http://127.0.0.1:9/v1",
                "client_ip": "127.0.0.0",
                "status": "success" if ok else "error",
                "http_status": 200 if ok else 500,
                "error": None if ok else "upstream error",
                "stream": i % 2,
                "start_us": start,
                "end_us": start + int(lat * 1000),
                "latency_ms": round(lat, 3),
                "ttft_ms": round(lat / 3, 3),
                "overhead_ms": 0.4,
                "retries": 0,
                "cache_hit": 0,
                "prompt_tokens": p if ok else 0,
                "completion_tokens": c if ok else 0,
                "total_tokens": p + c if ok else 0,
                "cached_tokens": 0,
                "reasoning_tokens": 0,
                "usage_estimated": 0,
                "spend_pusd": (p * 150 + c * 600) * 10**4 if ok else 0,
                "cost_breakdown": "[]",
                "price_source": "override",
                "metadata": None,
                "tags": orjson.dumps([f"bench:run{i % 10}"]).decode() if i % 100 == 0 else None,
                "bodies": 0,
                "key_alias": None,
                "priced_model": "m",
                "session_id": None,
                "request": None,
                "response": None,
            }
        )
        if len(batch) == 20_000:
            insert_rows(db, batch)
            batch = []
    if batch:
        insert_rows(db, batch)
    db.close()


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("million")
    url = sqlite_url(tmp / "big.db")
    seed(url)
    config = write_config(
        tmp / "modelmeter.toml",
        database=url,
        deployments=[{"name": "big", "model": "m", "api_base": "http://127.0.0.1:9/v1"}],
    )
    with ServerProcess(config, log_dir=tmp / "server") as proc:
        yield proc


def test_usage_tab_is_usable_within_a_second_with_a_million_records(
    browser: BrowserContext, big_server: ServerProcess
) -> None:
    page = browser.new_page()
    page.add_init_script(OBSERVE)
    # Cookies do not tell ports apart, and each server signs sessions with its own secret: this
    # server is signed in to by another host name, so the package's server keeps its own session.
    base = big_server.url.replace("127.0.0.1", "localhost")
    page.goto(f"{base}/?token={ADMIN_KEY}")
    try:
        for window in ("7d", "30d", "24h"):
            page.goto(f"{base}/models/big?window={window}")
            page.wait_for_selector(".plot .main-svg", timeout=30_000)
            t = page.evaluate("window.__t")
            print(f"window={window}: first rows {t['rows']} ms, cards {t['cards']} ms, charts {t['charts']} ms")
            assert t["rows"] < 1000 and t["cards"] < 1000, (window, t)
            rows = page.locator("table.log tbody tr.row")
            assert rows.count() == 50
            if window == "7d":  # the oldest few records leave the window while the test runs
                shown = page.locator('[data-card="requests"] [data-role=value]').get_attribute("data-value")
                assert int(shown or 0) > 0.999 * N
        # Paging stays fast deep into the log, and a row opens at once.
        started = time.monotonic()
        for _ in range(5):
            first = page.locator("table.log tbody tr.row").first.get_attribute("data-id")
            page.get_by_role("button", name="Next page").click()
            page.wait_for_function(
                "id => document.querySelector('table.log tbody tr.row')?.dataset.id !== id", arg=first
            )
        assert time.monotonic() - started < 5
    finally:
        page.close()
