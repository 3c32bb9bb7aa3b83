"""Who hears of the rows the writer stores: the listeners (Prometheus counters, this process's copy
of a key's or a user's spend, reservations settled; Live mode), once per row. The ledger itself, the
spend in the database, is added in the transaction that stores the rows (``storage.spend``).

Rows of the spool, or held in memory, may be stored already: by a process that died before it
removed them from its spool (a crash mid-drain, or a writer that fails and walks the spool again).
Its listeners ran when it stored them, so those rows go to ``found_stored`` instead: the recorder
process (recording/child.py) reports them apart, and the gateway counts those it replayed, which a
process that died stored without reporting (recording/remote.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from modelmeter.storage.row import RecordRow

log = logging.getLogger("modelmeter.recorder")

Listener = Callable[[list[RecordRow]], None]


class Listeners:
    def __init__(self) -> None:
        self.fresh: list[Listener] = []
        self.found_stored: Listener | None = None

    def stored(self, rows: list[RecordRow], fresh: list[RecordRow]) -> None:
        """A batch stored: ``fresh``, the rows of it the database did not hold before."""
        if len(fresh) < len(rows) and self.found_stored is not None:
            ids = {r["id"] for r in fresh}
            _call(self.found_stored, [r for r in rows if r["id"] not in ids])
        if fresh:
            for listener in list(self.fresh):
                _call(listener, fresh)


def _call(listener: Listener, rows: list[RecordRow]) -> None:
    try:
        listener(rows)
    except Exception:  # a listener's fault must not stop the writer
        log.exception("record listener failed")
