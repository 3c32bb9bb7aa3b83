"""The finisher thread's batches: records, and rows finished elsewhere, taken off the recorder's queue.

A batch is one transaction of the writer. After its first item the finisher lets more arrive for a
moment (the linger) unless a batch's worth is waiting already, then takes what is there, up to the
batch size counted in records (a chunk of rows finished by the finisher process counts its rows).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from modelmeter.metering.record import CallRecord
from modelmeter.storage.row import RecordRow

STOP = object()  # the end of the queue


@dataclass(slots=True)
class Finished:
    """Rows finished outside the recorder (recording/finishing.py), with their records' newest end."""

    rows: list[RecordRow]
    newest_end: float


def size(item: CallRecord | Finished) -> int:
    return len(item.rows) if type(item) is Finished else 1


def take(
    q: queue.Queue[Any],
    batch_size: int,
    linger: float,
    waiting: Callable[[], int],
    taking: Callable[[int], None],
) -> tuple[list[CallRecord | Finished], bool]:
    """The next batch (waiting for its first item), and whether the queue ended with it.
    ``waiting()``: records queued; ``taking(n)``: told the batch's size as it grows."""
    item = q.get()
    if item is STOP:
        return [], True
    batch = [item]
    n = size(item)
    taking(n)
    if linger > 0 and waiting() < batch_size:
        time.sleep(linger)
    while n < batch_size:
        try:
            item = q.get_nowait()
        except queue.Empty:
            break
        if item is STOP:
            return batch, True
        batch.append(item)
        n += size(item)
    taking(n)
    return batch, False


def rows_of(
    batch: list[CallRecord | Finished], finish: Callable[[CallRecord], RecordRow | None]
) -> tuple[list[RecordRow], float, int]:
    """The batch's rows in order (its records ``finish``ed, None left out), the newest record's end,
    and how many of the rows came finished."""
    if not any(type(item) is Finished for item in batch):
        records = cast(list[CallRecord], batch)
        return [r for r in map(finish, records) if r is not None], records[-1].end, 0
    rows: list[RecordRow] = []
    newest_end = 0.0
    came_finished = 0
    for item in batch:
        if type(item) is Finished:
            rows += item.rows
            came_finished += len(item.rows)
            newest_end = max(newest_end, item.newest_end)
        else:
            record = cast(CallRecord, item)
            if (row := finish(record)) is not None:
                rows.append(row)
            newest_end = max(newest_end, record.end)
    return rows, newest_end, came_finished
