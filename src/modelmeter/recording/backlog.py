"""What the writer catches up on between live batches: batches held in memory (neither the database
nor the spool took them), then the spool (this process's, and files left by processes that died),
a batch at a time so live traffic is never starved, resuming where the last call stopped."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from modelmeter.recording.fallback import Fallback
from modelmeter.recording.spool import Spool

log = logging.getLogger("modelmeter.recorder")

# The writer's store of one batch (rows, newest end, from_spool, held): False if stop() gave up.
Store = Callable[..., bool]


class Backlog:
    def __init__(self, fallback: Fallback, store: Store) -> None:
        self._fallback = fallback
        self._store = store
        self._draining: Iterator[bool] | None = None  # the spool being stored, a batch at a time

    def forget_drain(self) -> None:
        """Drop the spool walk in progress (after a writer failure); the next call claims afresh."""
        self._draining = None

    def catch_up(self, batches: int | None = None) -> bool:
        """Store held batches, then the spool (all, or ``batches`` of each); False if stop() gave up."""
        done = 0
        while self._fallback.held and (batches is None or done < batches):
            rows = self._fallback.held.pop()
            if rows is None:
                break
            if not self._store(rows, time.time(), held=True):
                return False
            done += 1
        if self._draining is not None or self._fallback.spool.rows:
            return self.drain_spool(batches)
        return True

    def _spool_batches(self) -> Iterator[bool]:
        """Store the spool (ours, and files left by processes that died), yielding after each
        batch: True once it is stored, False if stop() gave up (the file stays for the next start)."""
        for path in self._fallback.spool.claim():
            for rows in Spool.read(path):
                stored = self._store(rows, time.time(), from_spool=True)
                yield stored
                if not stored:
                    return
            path.unlink(missing_ok=True)
            log.info("stored the records spooled in %s", path.name)

    def drain_spool(self, batches: int | None = None) -> bool:
        """Store the spool: all of it, or ``batches`` batches, resuming where the last call stopped.
        False if stop() gave up meanwhile."""
        if self._draining is None:
            if not self._fallback.spool.pending():
                return True
            self._draining = self._spool_batches()
        done = 0
        while batches is None or done < batches:
            stored = next(self._draining, None)
            if stored is None:  # everything claimed is stored
                self._draining = None
                if batches is None and self._fallback.spool.rows:  # spooled meanwhile: claim that too
                    self._draining = self._spool_batches()
                    continue
                return True
            if not stored:
                self._draining = None
                return False
            done += 1
        return True
