"""Live mode's push channel: records the writer has just stored, fanned out to SSE subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from modelmeter.storage.row import RecordRow
from modelmeter.usage.records import row_to_api


class LiveHub:
    """The writer thread publishes stored rows; each subscriber gets those of its deployment."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[asyncio.Queue[dict[str, Any]], str] = {}
        # Told the watched deployments when they change (a recorder process sends only their rows whole).
        self.on_change: Callable[[list[str]], None] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, rows: list[RecordRow]) -> None:
        """Called from the writer thread after a batch is stored."""
        if self._loop is None or not self._subscribers:
            return
        self._loop.call_soon_threadsafe(self._fan_out, rows)

    def _fan_out(self, rows: list[RecordRow]) -> None:
        wanted = set(self._subscribers.values())
        public = [row_to_api(r) for r in rows if r["deployment"] in wanted]
        for queue, deployment in list(self._subscribers.items()):
            for row in public:
                if row["deployment"] == deployment and queue.qsize() < 1000:
                    queue.put_nowait(row)

    def subscribe(self, deployment: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers[queue] = deployment
        self._changed()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.pop(queue, None)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(sorted(set(self._subscribers.values())))
