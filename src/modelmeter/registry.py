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
        self._skipped: set[str] = set()  # stored definitions that are not valid (warned once)

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
                except (ConfigError, orjson.JSONDecodeError) as exc:
                    # a definition an older version accepted: skip it (it can still be deleted)
                    if name not in self._skipped:
                        log.warning(
                            "stored deployment %r is not valid (%s); serving without it. "
                            "DELETE /api/deployments/%s removes it",
                            name,
                            exc,
                            name,
                        )
                        self._skipped.add(name)
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
                    log.warning("cannot reload the deployments (keeping the last ones): %s", type(exc).__name__)
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
            if self._db.fetchone("SELECT 1 FROM deployments WHERE name = :n", {"n": dep.name}):
                raise ConfigError(
                    f"a deployment named {dep.name!r} already exists, stored with a "
                    "definition that is no longer valid; remove it first"
                )
            stored = {k: v for k, v in definition.items() if v is not None}
            stored["name"] = dep.name
            self._db.execute(
                "INSERT INTO deployments (name, definition, created_us) VALUES (:n, :d, :t)",
                {"n": dep.name, "d": orjson.dumps(stored).decode(), "t": int(time.time() * 1e6)},
            )
            self.load()
        return dep

    def remove(self, name: str) -> bool:
        """Delete a run-time deployment, also one whose stored definition is no longer valid; False
        if there is none of that name. ConfigError for one of the config file or a built-in."""
        with self._lock:
            dep = self._configured.get(name)
            if dep is not None and dep.source == "builtin":
                raise ConfigError(
                    f"{name!r} is a built-in embedded model, served because no config file "
                    "lists deployments; to serve only others, list them under "
                    "[[deployments]] in a config file (modelmeter serve --config FILE)"
                )
            if dep is not None:
                raise ConfigError(f"{name!r} is defined in the config file; remove it there")
            removed = self._db.execute("DELETE FROM deployments WHERE name = :n", {"n": name})
            self.load()
        return removed > 0
