"""The evaluation loop: every ``interval`` seconds, each rule's value from the rollups, its next state,
and a notification for each firing and resolved change (exactly one: see ``store.change``).

The reads and writes run in a worker thread; the loop itself only sleeps and schedules, so it never
holds up the gateway on the same event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from modelmeter.alerts import payload, store
from modelmeter.alerts.delivery import Notifier
from modelmeter.alerts.measure import Measurement, measure
from modelmeter.alerts.rules import AlertRule
from modelmeter.alerts.state import step
from modelmeter.storage.database import Database

log = logging.getLogger("modelmeter.alerts")

Measure = Callable[[Database, AlertRule, int], Measurement]


class AlertEngine:
    def __init__(
        self,
        db: Database,
        config_rules: Sequence[AlertRule],
        notifier: Notifier,
        *,
        base_url: str,
        interval: float = 30.0,
        clock: Callable[[], float] = time.time,
        measure_fn: Measure = measure,
    ) -> None:
        self.db = db
        self._config = tuple(config_rules)
        self._notifier = notifier
        self._base_url = base_url
        self.interval = interval
        self._clock = clock
        self._measure = measure_fn

    def rules(self) -> list[AlertRule]:
        """Config rules, then the API's (a stored rule never shadows a config rule of its name)."""
        names = {r.name for r in self._config}
        return [*self._config, *(r for r in store.api_rules(self.db) if r.name not in names)]

    def config_rule(self, name: str) -> AlertRule | None:
        return next((r for r in self._config if r.name == name), None)

    def evaluate(self) -> list[tuple[AlertRule, str, dict[str, object]]]:
        """One pass over every rule (blocking: run it in a thread); the notifications to send."""
        out: list[tuple[AlertRule, str, dict[str, object]]] = []
        now_us = int(self._clock() * 1e6)
        for rule in self.rules():
            try:
                m = self._measure(self.db, rule, now_us)
                old = store.state_of(self.db, rule.name, now_us)
                new, tr = step(old, rule.breached(m.value), m.value, now_us, int(rule.for_s * 1e6))
                if tr is None:
                    store.keep_value(self.db, rule.name, new, now_us)
                    continue
                body = payload.body(rule, tr, m, self._base_url) if tr.notify else None
                event_id = store.change(self.db, rule, old, new, tr, body)
                if event_id is not None and body is not None:
                    log.info("alert %s: %s (value %s, threshold %s)", rule.name, tr.change, m.value, rule.threshold)
                    out.append((rule, event_id, payload.render(rule, body)))
            except Exception:  # one rule's failure (a database hiccup) must not stop the others
                log.exception("alert %s: evaluation failed", rule.name)
        return out

    async def tick(self) -> int:
        """Evaluate in a thread, then queue the notifications; how many were queued."""
        notes = await asyncio.to_thread(self.evaluate)
        for rule, event_id, body in notes:
            self._notifier.send(rule, event_id, body)
        return len(notes)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("alert evaluation failed")
            await asyncio.sleep(self.interval)
