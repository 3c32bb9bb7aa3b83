"""The finisher thread's batches (recording/batch.py): a chunk of rows finished by the finisher
process counts its rows towards the batch size, so a transaction stays as large as configured."""

from __future__ import annotations

import queue
import time
from typing import Any

from modelmeter.recording import batch
from modelmeter.recording.batch import Finished
from tests.recording.test_recorder_process import rec


def rows(n: int, end: float) -> Finished:
    return Finished([{"id": f"r{i}"} for i in range(n)], end)


def test_a_batch_counts_finished_rows_and_keeps_the_order() -> None:
    q: queue.Queue[Any] = queue.Queue()
    records = [rec(i) for i in range(3)]
    items = [records[0], rows(150, 10.0), records[1], rows(150, 5.0), records[2], batch.STOP]
    for item in items:
        q.put(item)
    told: list[int] = []
    first, stopped = batch.take(q, 200, 0.0, q.qsize, told.append)
    assert first == items[:4] and not stopped  # 1 + 150 + 1 + 150 >= 200: the batch is full
    assert told == [1, 302]
    got, newest_end, came_finished = batch.rows_of(first, lambda r: {"id": r.id})
    assert [r["id"] for r in got] == [
        records[0].id,
        *[f"r{i}" for i in range(150)],
        records[1].id,
        *[f"r{i}" for i in range(150)],
    ]
    assert came_finished == 300 and newest_end == max(10.0, records[1].end)
    second, stopped = batch.take(q, 200, 0.0, q.qsize, told.append)
    assert second == [records[2]] and stopped


def test_a_record_that_cannot_be_finished_is_left_out() -> None:
    records = [rec(i) for i in range(3)]
    got, newest_end, came_finished = batch.rows_of(
        [records[0], rows(2, 0.0), records[1], records[2]],
        lambda r: None if r is records[1] else {"id": r.id},
    )
    assert [r["id"] for r in got] == [records[0].id, "r0", "r1", records[2].id]
    assert came_finished == 2 and newest_end == max(r.end for r in records)


def test_the_linger_waits_only_while_less_than_a_batch_is_queued() -> None:
    q: queue.Queue[Any] = queue.Queue()
    q.put(rec(0))
    t0 = time.monotonic()
    batch.take(q, 200, 0.2, lambda: 0, lambda n: None)
    assert time.monotonic() - t0 >= 0.2
    q.put(rec(1))
    t0 = time.monotonic()
    batch.take(q, 200, 5.0, lambda: 400, lambda n: None)  # a batch's worth waits: no linger
    assert time.monotonic() - t0 < 1.0
