"""Webhook delivery against a real local HTTP server: bounded retries with exponential backoff,
every attempt recorded, ``send`` never waits for the receiver, one rule's notifications in order."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from modelmeter.alerts import store
from modelmeter.alerts.delivery import Notifier, backoff
from modelmeter.alerts.rules import parse_rule
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate


def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    migrate(db)
    return db


async def _receiver(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook/{token}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/hook/secret-token"


def test_backoff_doubles_and_is_bounded() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff(50) == 30.0


def test_a_dead_receiver_gets_a_bounded_number_of_attempts(tmp_path: Path) -> None:
    db = _db(tmp_path)
    posts: list[Any] = []
    waits: list[float] = []

    async def fail(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.Response(status=503)

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    async def run() -> bool:
        runner, url = await _receiver(fail)
        rule = parse_rule({"name": "r", "kind": "spend", "threshold": 1, "webhook": url})
        notifier = Notifier(db, max_attempts=4, sleep=fake_sleep)
        try:
            return await notifier.deliver(rule, "ev1", {"status": "firing"})
        finally:
            await notifier.close()
            await runner.cleanup()

    assert asyncio.run(run()) is False
    assert len(posts) == 4 and waits == [0.5, 1.0, 2.0]  # no wait after the last attempt
    rows = db.fetchall("SELECT attempt, http_status, error, ok FROM alert_deliveries ORDER BY attempt")
    assert rows == [(n, 503, "HTTP 503", 0) for n in (1, 2, 3, 4)]


def test_send_returns_at_once_and_keeps_a_rules_order(tmp_path: Path) -> None:
    db = _db(tmp_path)
    got: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(0.3 if body["status"] == "firing" else 0.0)  # the first is the slow one
        got.append(body["status"])
        return web.Response(status=204)

    async def run() -> float:
        runner, url = await _receiver(slow)
        rule = parse_rule({"name": "r", "kind": "spend", "threshold": 1, "webhook": url})
        notifier = Notifier(db)
        try:
            t0 = time.perf_counter()
            notifier.send(rule, "e1", {"status": "firing"})
            notifier.send(rule, "e2", {"status": "resolved"})
            spent = time.perf_counter() - t0
            await notifier.drain(5)
            return spent
        finally:
            await notifier.close()
            await runner.cleanup()

    assert asyncio.run(run()) < 0.05  # queued, not sent, by send()
    assert got == ["firing", "resolved"]
    history = db.fetchall("SELECT event_id, http_status, ok FROM alert_deliveries ORDER BY at_us")
    assert history == [("e1", 204, 1), ("e2", 204, 1)]


def test_an_unset_webhook_env_is_recorded(tmp_path: Path, monkeypatch: Any) -> None:
    db = _db(tmp_path)
    monkeypatch.delenv("MM_UNSET_HOOK", raising=False)
    rule = parse_rule({"name": "r", "kind": "spend", "threshold": 1, "webhook_env": "MM_UNSET_HOOK"})

    async def run() -> bool:
        notifier = Notifier(db)
        try:
            return await notifier.deliver(rule, "e1", {"status": "firing"})
        finally:
            await notifier.close()

    assert asyncio.run(run()) is False
    assert store.history(db, "r")["data"] == []  # no event row here; the attempt is kept by event id
    assert db.fetchall("SELECT error, ok FROM alert_deliveries") == [("no webhook set", 0)]


def test_a_malformed_url_in_webhook_env_is_recorded_not_logged(
    tmp_path: Path, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The variable's value is not checked when the rule is read (it is read at delivery): a bad
    URL fails each attempt with the error's kind, and its text (the URL, a token in it) is in no log."""
    db = _db(tmp_path)
    secret = "tok-0123456789abcdef"
    monkeypatch.setenv("MM_BAD_HOOK", f"http://[::1/hooks/{secret}")
    rule = parse_rule({"name": "r", "kind": "spend", "threshold": 1, "webhook_env": "MM_BAD_HOOK"})

    async def nap(seconds: float) -> None:
        pass

    async def run() -> bool:
        notifier = Notifier(db, max_attempts=2, sleep=nap)
        try:
            return await notifier.deliver(rule, "e1", {"status": "firing"})
        finally:
            await notifier.close()

    with caplog.at_level(logging.DEBUG):
        assert asyncio.run(run()) is False
    rows = db.fetchall("SELECT attempt, error, ok FROM alert_deliveries ORDER BY attempt")
    assert [(r[0], r[2]) for r in rows] == [(1, 0), (2, 0)] and all(r[1] and secret not in r[1] for r in rows)
    assert secret not in caplog.text and "webhook to not a valid URL failed" in caplog.text
    assert rule.public()["webhook"] == "not a valid URL"  # the API and the page show this, not a 500
