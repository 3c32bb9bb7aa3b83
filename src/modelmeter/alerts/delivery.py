"""Webhook deliveries: off the gateway's path, retried with bounded exponential backoff, each attempt
recorded.

``Notifier.send`` only queues: the POST runs in its own task with aiohttp's client (a runtime
dependency already; httpx is not one). Notifications
of one rule go out in order (a rule's resolved never overtakes its firing); rules do not wait for
each other. Nothing logged or recorded carries the URL (it holds tokens): errors are kept as their
exception's class name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from modelmeter.alerts import store
from modelmeter.alerts.rules import AlertRule
from modelmeter.storage.database import Database

log = logging.getLogger("modelmeter.alerts")

MAX_ATTEMPTS = 5
FIRST_BACKOFF_S = 0.5  # then 1, 2, 4 s: the fifth attempt ends within ~8 s of waits
MAX_BACKOFF_S = 30.0
TIMEOUT_S = 10.0


def backoff(attempt: int, first: float = FIRST_BACKOFF_S) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based)."""
    return min(first * 2 ** (attempt - 1), MAX_BACKOFF_S)


class Notifier:
    def __init__(
        self,
        db: Database,
        *,
        session: aiohttp.ClientSession | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        first_backoff: float = FIRST_BACKOFF_S,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._db = db
        self._session = session  # made on first use, inside the running loop
        self._max = max_attempts
        self._first = first_backoff
        self._sleep = sleep
        self._tails: dict[str, asyncio.Task[None]] = {}

    def send(self, rule: AlertRule, event_id: str, body: dict[str, Any]) -> None:
        """Queue one notification (after the rule's previous one); returns at once."""
        prev = self._tails.get(rule.name)
        task = asyncio.create_task(self._after(prev, rule, event_id, body))
        self._tails[rule.name] = task
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for name, tail in list(self._tails.items()):
            if tail is task:
                del self._tails[name]

    async def _after(
        self, prev: asyncio.Task[None] | None, rule: AlertRule, event_id: str, body: dict[str, Any]
    ) -> None:
        if prev is not None:
            await asyncio.gather(prev, return_exceptions=True)
        try:
            await self.deliver(rule, event_id, body)
        except Exception:  # never let one rule's delivery take the loop down
            log.exception("alert %s: delivery failed", rule.name)

    async def deliver(self, rule: AlertRule, event_id: str, body: dict[str, Any]) -> bool:
        url = rule.webhook_url()
        if not url:  # recorded too: the history says why nobody was told
            log.warning("alert %s: no webhook set (webhook_env %s is empty?)", rule.name, rule.webhook_env)
            a = store.Attempt(event_id, rule.name, 1, int(time.time() * 1e6), None, "no webhook set", 0.0, False)
            await asyncio.to_thread(store.add_attempt, self._db, a)
            return False
        for attempt in range(1, self._max + 1):
            t0 = time.monotonic()
            status: int | None = None
            error: str | None = None
            try:
                # no redirects: a webhook goes where the rule says (and no proxy from the env either)
                async with self._client().post(url, json=body, allow_redirects=False) as response:
                    status = response.status
            except Exception as exc:  # e.g. yarl's ValueError for a bad URL in webhook_env: its text is the URL
                error = type(exc).__name__
            ok = status is not None and 200 <= status < 300
            if status is not None and not ok:
                error = f"HTTP {status}"
            a = store.Attempt(
                event_id, rule.name, attempt, int(time.time() * 1e6), status, error, (time.monotonic() - t0) * 1e3, ok
            )
            await asyncio.to_thread(store.add_attempt, self._db, a)
            if ok:
                return True
            log.warning(
                "alert %s: webhook to %s failed (%s), attempt %d", rule.name, rule.webhook_shown(), error, attempt
            )
            if attempt < self._max:
                await self._sleep(backoff(attempt, self._first))
        return False

    async def drain(self, timeout: float = 2.0) -> None:
        """Wait a little for queued notifications (at shutdown), then give up on them."""
        tasks = list(self._tails.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def close(self) -> None:
        for task in list(self._tails.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        return self._session
