"""Helpers of the browser tests: requests through the gateway, formatting as the page does it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openai
from playwright.sync_api import Page, Request

from tests.helpers import ROOT, ServerProcess, wait_for

SHOTS = ROOT / "test-artifacts" / "screenshots"
TZ = "Europe/Paris"
SYSTEM = "You are a terse assistant."


def shot(page: Page, name: str, **kw: Any) -> Path:
    """Save a screenshot to test-artifacts/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), **kw)
    return path


def chat(
    client: openai.OpenAI,
    model: str,
    prompt: str = "Hello there",
    *,
    max_tokens: int | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, str] | None = None,
    stream: bool = False,
) -> str:
    """One chat completion through the gateway; returns its request ID (chatcmpl-…)."""
    kw: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
    }
    if max_tokens is not None:
        kw["max_tokens"] = max_tokens
    if tags:
        kw["extra_headers"] = {"x-modelmeter-tags": ",".join(tags)}
    if metadata:
        kw["metadata"] = metadata
    if stream:
        chunks = client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw)
        ids = [c.id for c in chunks]  # read the whole stream: the request is then complete
        return str(ids[0])
    return str(client.chat.completions.create(**kw).id)


def failing(client: openai.OpenAI, model: str) -> None:
    """A request the gateway rejects (400): recorded as an error."""
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], max_tokens=-1)
    except openai.BadRequestError:
        return
    raise AssertionError("expected a 400")


def records(server: ServerProcess, deployment: str, n: int, **query: Any) -> list[dict[str, Any]]:
    """Wait until the deployment has n records (the recorder writes within milliseconds)."""
    return wait_for(
        lambda: (r := server.records(deployment, **query)) and len(r) >= n and r,
        10,
        message=f"{n} records of {deployment}",
    )


def record_where(server: ServerProcess, deployment: str, match: Any, **query: Any) -> dict[str, Any]:
    """Wait until one of the deployment's newest records matches (a count is not enough when
    earlier tests left records of the same deployment: the new ones may not be stored yet)."""
    return wait_for(  # type: ignore[no-any-return]
        lambda: next((r for r in server.records(deployment, **query) if match(r)), None),
        10,
        message=f"a matching record of {deployment}",
    )


def api(server: ServerProcess, path: str) -> Any:
    status, body = server.api("GET", path)
    assert status == 200, body
    return body


def fmt(page: Page, fn: str, value: Any) -> str:
    """Format a value with the page's own format.js (so locale and rounding are the page's)."""
    return str(page.evaluate("async ([fn, v]) => (await import('/static/js/format.js'))[fn](v)", [fn, value]))


def log_ids(page: Page) -> list[str]:
    """The record ids of the request log's rows, top to bottom."""
    return list(page.eval_on_selector_all("table.log tbody tr.row", "rows => rows.map(r => r.dataset.id)"))


def open_usage(page: Page, deployment: str, query: str = "") -> None:
    page.goto(f"/models/{deployment}{query}")
    page.wait_for_selector("table.log tbody tr.row, .empty-state")
    page.wait_for_function("() => !document.querySelector('.cards .skeleton')")


class ApiCalls(list[Request]):
    """The /api requests a page makes from now on; ``settle(n)`` waits for n of them to finish."""

    def __init__(self, page: Page) -> None:
        super().__init__()
        self.page = page
        self.done = 0
        page.on("request", lambda r: self.append(r) if "/api/" in r.url else None)
        page.on("requestfinished", self._finished)
        page.on("requestfailed", self._finished)

    def _finished(self, r: Request) -> None:
        if "/api/" in r.url:
            self.done += 1

    def settle(self, n: int) -> None:
        deadline = time.monotonic() + 10
        while self.done < n and time.monotonic() < deadline:
            self.page.wait_for_timeout(20)
        self.page.wait_for_timeout(300)  # nothing more comes
        assert self.done >= n, [c.url for c in self]


def api_calls(page: Page) -> ApiCalls:
    return ApiCalls(page)
