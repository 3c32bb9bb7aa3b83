"""What the gateway and the API need of a recorder: the in-process ``Recorder`` (threads) and
``RemoteRecorder`` (a process of its own) both are one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from modelmeter.metering.record import CallRecord
from modelmeter.recording.listeners import Listener


async def submit_when_room(submit_nowait: Callable[[CallRecord], bool], rec: CallRecord) -> None:
    """Queue a record; while there is no room, wait for it (back-pressure, no loss): both sinks."""
    delay = 0.001
    while not submit_nowait(rec):
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


class RecordSink(Protocol):
    @property
    def written(self) -> int: ...

    @property
    def failed_batches(self) -> int: ...

    @property
    def last_lag_s(self) -> float: ...

    def submit_nowait(self, rec: CallRecord) -> bool: ...

    async def submit(self, rec: CallRecord) -> None: ...

    @property
    def depth(self) -> int: ...

    @property
    def lost(self) -> int: ...

    @property
    def problem(self) -> str | None: ...

    @property
    def backlog(self) -> dict[str, Any]: ...

    def add_listener(self, listener: Listener, *, whole: bool = False) -> None: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = 30.0) -> None: ...
