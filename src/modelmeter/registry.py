"""The deployments being served: those of the config file, plus run-time ones kept in the database.

Reads are plain dict look-ups on the hot path, which never touches the database. Run-time changes
made by another process (another ``--workers`` process or replica) are picked up by
``refresh_forever``, a background task that reloads every second in a thread; with the database
away it keeps the last good list and tries again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable

import orjson

from modelmeter.config import ConfigError, Deployment
from modelmeter.storage.database import Database

REFRESH_INTERVAL_S = 1.0
log = logging.getLogger("modelmeter.registry")


class Registry:
    def __init__(self, db: Database, configured: Iterable[Deployment]) -> None:
        self._db = db
        self._configured = {d.name: d for d in configured}
        self._all: dict[str, Deployment] = dict(self._configured)
        self._local_bases: dict[str, str] = {}  # embedded model id -> its worker's api_base
        self._lock = threading.Lock()
        self._loaded_at = 0.0

    def get(self, name: str) -> Deployment | None:
        return self._all.get(name)

    def all(self) -> list[Deployment]:
        return list(self._all.values())

    def base_url(self, dep: Deployment) -> str | None:
        return dep.api_base if dep.api_base is not None else self._local_bases.get(dep.model)

    def set_local_base(self, model: str, api_base: str) -> None:
        self._local_bases[model] = api_base

    def load(self) -> None:
        rows = self._db.fetchall("SELECT name, definition FROM deployments ORDER BY created_us")
        merged = dict(self._configured)
        for name, definition in rows:
            if name not in merged:
                try:
                    merged[name] = Deployment.from_mapping(orjson.loads(definition), source="api")
                except ConfigError:
                    continue  # a definition an older version accepted; skip rather than fail
        self._all = merged
        self._loaded_at = time.monotonic()

    def refresh(self, max_age: float = 1.0) -> None:
        if time.monotonic() - self._loaded_at >= max_age:
            self.load()

    async def refresh_forever(self, interval: float = REFRESH_INTERVAL_S) -> None:
        """Reload every ``interval`` seconds off the event loop; errors are logged once per outage."""
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.load)
            except Exception as exc:
                if not failing:
                    log.warning("cannot reload the deployments (keeping the last ones): %s",
                                type(exc).__name__)
                failing = True
            else:
                if failing:
                    log.info("reloading the deployments works again")
                failing = False

    def add(self, definition: dict[str, object]) -> Deployment:
        dep = Deployment.from_mapping(dict(definition), source="api")
        with self._lock:
            self.load()
            if dep.name in self._all:
                raise ConfigError(f"a deployment named {dep.name!r} already exists")
            stored = {k: v for k, v in definition.items() if v is not None}
            stored["name"] = dep.name
            self._db.execute(
                "INSERT INTO deployments (name, definition, created_us) VALUES (:n, :d, :t)",
                {"n": dep.name, "d": orjson.dumps(stored).decode(), "t": int(time.time() * 1e6)},
            )
            self.load()
        return dep

    def remove(self, name: str) -> bool:
        with self._lock:
            if name in self._configured:
                raise ConfigError(f"{name!r} is defined in the config file; remove it there")
            removed = self._db.execute("DELETE FROM deployments WHERE name = :n", {"n": name})
            self.load()
        return removed > 0
