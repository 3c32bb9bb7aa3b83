"""Browser tests: one real ``modelmeter serve`` and one headless Debian chromium for the session.

Each test gets a fresh page (its local storage cleared after it) on the shared server, and its
own deployment(s) so that the numbers it checks are not disturbed by the other tests. Chromium is the
system one (``/usr/bin/chromium``); no browser is ever downloaded. If it is missing, tests FAIL.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.browser.support import TZ
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ADMIN_KEY, ServerProcess, sqlite_url, write_config

CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
# name -> extra fields; every deployment points at the fake upstream's "fake-model".
DEPLOYMENTS: dict[str, dict[str, Any]] = {
    "cards-model": {"price": {"input": 1.5, "output": 2.0}},
    "paging-model": {"price": {"input": 1.0, "output": 4.0}},
    "drawer-model": {"provider": "openai", "price": {"input": 3.0, "output": 15.0}},
    "live-model": {},
    "xss-model": {},
    "empty-model": {},
    "filters-model": {},
    "nobodies-model": {"store_bodies": False},
    "team/slash-model": {},  # a name with a slash: one encoded path segment in the page's URLs
    "origin-model": {"price": {"input": 1.0, "output": 1.0}},
    "liveurl-model": {},
    "ticks-empty-model": {},
    "ticks-model": {"model": "slow-stream"},  # the fake answers 0.3 s a token: long latencies
    "phone-model": {"price": {"input": 3.0, "output": 15.0}},
    "history-model": {},
    "ledger-model": {"provider": "openai", "price": {"input": 1.0, "output": 2.0}},
    "sessions-model": {},
    # Anthropic's Messages API upstream: a chat call to it is translated (gateway/translated.py).
    "translated-model": {"model": "claude-translated", "provider": "anthropic"},
    "byid-model": {"api": "responses", "model": "resp-byid-reasoning", "price": {"input": 3.0, "output": 15.0}},
    "insights-model": {"price": {"input": 2.0, "output": 8.0}},
    "breakdown-model": {"price": {"input": 2.0, "output": 8.0}},
    # test_usage_first_visit: dollars per request, so the spend axes read "$1.50" (not "$0.000012")
    "firstvisit-model": {"price": {"input": 20000.0, "output": 80000.0}},
    "alerts-model": {},  # no traffic: test_alerts_page's "no_traffic" rule fires on it
    # Two upstreams on the fake (routing/): the first always answers 500, so each call is answered
    # by the second after one failed attempt (never cooled: cooldown_after is high).
    "routed-model": {
        "upstreams": [
            {"name": "primary", "model": "fail-500", "price": {"input": 1.0, "output": 1.0}},
            {"name": "backup", "priority": 1, "price": {"input": 2.0, "output": 4.0}},
        ],
        "cooldown_after": 1000,
    },
    # its primary answers 402: out after the first call, until reset from the model page
    "routed-out-model": {"upstreams": [{"name": "broke", "model": "fail-402"}, {"name": "spare", "priority": 1}]},
    # test_evaluate: runs the server starts from the Evaluate tab
    "evaluate-model": {"price": {"input": 1.0, "output": 2.0}},
    "evalitems-model": {"price": {"input": 1.0, "output": 2.0}},
    "compare-model": {"price": {"input": 1.0, "output": 2.0}},
    "overlay-model": {"price": {"input": 1.0, "output": 2.0}},  # test_runs_import: import, latency overlay
    "marks-model": {},  # test_alert_marks: a no_traffic rule fires, then one call resolves it
    "contrast-model": {"price": {"input": 1.0, "output": 2.0}},  # test_contrast
    "keyboard-model": {},  # test_keyboard
    "fleet-model": {"price": {"input": 2.0, "output": 6.0}},  # test_fleet_page: totals, sort, compare
    # test_usage_panels: the fake reports cached (half the prompt), cache-write (a quarter) and
    # reasoning (2) tokens; its first answer is a 503 (retried, rescued); the response cache is on.
    "panels-model": {
        "model": "panels-cached-cachewrite-reasoning-flaky-1",
        "price": {"input": 2.0, "cached_input": 0.5, "cache_write": 2.5, "output": 8.0, "reasoning": 10.0},
        "cache_ttl": 600,
    },
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
    # Playwright's page.clock is the context's clock, and the context is shared: once a test
    # installs a fake clock it stays for every later page. Those tests run last of this package.
    where = [i for i, item in enumerate(items) if item.get_closest_marker("browser")]
    if where:
        block = items[where[0] : where[-1] + 1]
        block.sort(key=lambda item: item.get_closest_marker("fake_clock") is not None)
        items[where[0] : where[-1] + 1] = block


# Package scope, not session: Playwright's sync API keeps an event loop running in the main thread
# while it is open, which would break every asyncio test that runs after the browser tests.
@pytest.fixture(scope="package")
def server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("browser")
    deployments = [
        {"name": name, "model": "fake-model", "api_base": fake_upstream.base_url, **extra}
        for name, extra in DEPLOYMENTS.items()
    ]
    config = write_config(
        tmp / "modelmeter.toml",
        database=sqlite_url(tmp / "modelmeter.db"),
        deployments=deployments,
        alert_interval=0.5,  # alert rules made by a test fire within a second
    )
    with ServerProcess(config, log_dir=tmp / "server") as proc:
        yield proc


@pytest.fixture(scope="package")
def browser(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One chromium with a profile on disk for the session: its HTTP and code caches make plotly's
    4.8 MB load fast after the first page, as in a real browser. Each test gets a fresh page."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium): the browser tests need it")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            base_url=server.url,
            viewport={"width": 1440, "height": 900},
            timezone_id=TZ,
            locale="en-US",
            color_scheme="light",
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        sign_in(context, server)
        yield context
        context.close()


def sign_in(context: BrowserContext, server: ServerProcess) -> None:
    """As a user does: open the link ``serve`` prints (``/?token=…``); the server sets the session
    cookie and redirects to the clean URL."""
    page = context.new_page()
    page.goto(f"{server.url}/?token={ADMIN_KEY}")
    assert page.url == f"{server.url}/", page.url
    assert any(c["name"] == "modelmeter_session" and c["httpOnly"] for c in context.cookies())
    page.close()


class PageProblems:
    """JavaScript errors and CSP violations seen by a page: a test fails if there are any."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)

    def _console(self, msg: ConsoleMessage) -> None:
        text = msg.text
        if "Content Security Policy" in text or (
            msg.type == "error" and "favicon" not in text and "Failed to load resource" not in text
        ):
            self.errors.append(f"console {msg.type}: {text}")


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    pg = browser.new_page()
    pg.set_default_timeout(10_000)
    problems = PageProblems(pg)
    yield pg
    with contextlib.suppress(Exception):
        pg.evaluate("localStorage.clear()")
    pg.close()
    assert not problems.dialogs, f"a dialog was opened: {problems.dialogs}"
    assert not problems.errors, "\n".join(problems.errors)


@pytest.fixture(scope="package")
def client(server: ServerProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=20) as c:
        yield c
