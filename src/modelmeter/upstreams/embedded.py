"""Starts and stops the embedded models' worker processes that local deployments point at."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Literal, cast

from modelmeter.config import Deployment
from modelmeter.upstreams.local import LocalModelSpec, LocalModelWorker

log = logging.getLogger("modelmeter.embedded")


class EmbeddedModels:
    """One worker per embedded model id, shared by every deployment that names it."""

    def __init__(self, default_threads: int = 2) -> None:
        self._threads = default_threads
        self._workers: dict[str, LocalModelWorker] = {}
        self._lock = threading.Lock()

    def start(self, dep: Deployment) -> str:
        """Start (once) the worker serving ``dep.model``; returns its api_base. Blocking."""
        with self._lock:
            worker = self._workers.get(dep.model)
            if worker is None or not worker.is_running():
                kind = cast(Literal["chat", "embedding"], dep.local_kind)
                worker = LocalModelWorker(LocalModelSpec(kind, threads=dep.threads or self._threads))
                log.info("starting the embedded %s model %s", kind, dep.model)
                worker.start()
                self._workers[dep.model] = worker
            base = worker.api_base
            assert base is not None
            return base

    async def astart(self, dep: Deployment) -> str:
        return await asyncio.to_thread(self.start, dep)

    def stop(self) -> None:
        with self._lock:
            for worker in self._workers.values():
                worker.stop()
            self._workers.clear()
