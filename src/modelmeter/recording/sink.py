"""What the gateway and the API need of a recorder: the in-process ``Recorder`` (threads) and
``RemoteRecorder`` (a process of its own) both are one."""

from __future__ import annotations

from typing import Any, Protocol

from modelmeter.metering.record import CallRecord
from modelmeter.recording.recorder import Listener


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
