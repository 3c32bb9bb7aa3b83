"""Ingest through the server's recorder: the gateway's side (RemoteRecorder) and its recorder
process, with and without the finisher process (recording/finishing.py), alternated in one run.

    python benchmarks/recorder_process.py --records 200000 --rounds 3
    python benchmarks/recorder_process.py --database postgresql://postgres@127.0.0.1:5432/mm_ingest

``scale.py --ingest-only`` measures the in-process Recorder (the threads a ``recorder = "thread"``
server runs); this is what ``serve`` runs. Records are scale.py's synthetic mix (10,000 keys,
100,000 users), stamped over the last minute and handed over in time order as fast as the recorder
takes them (past its capacity the gateway's submit refuses, and this waits). A run ends when every
record is settled (stored, and reported so to the gateway). It prints records/s and the CPU time a
record of the gateway's process and of the recorder's processes (the finisher process's included).
SQLite runs use a fresh file each; a PostgreSQL database is emptied of records first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import scale

from modelmeter.config import Settings
from modelmeter.metering.record import CallRecord
from modelmeter.recording.child import ChildConfig
from modelmeter.recording.remote import RemoteRecorder
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


async def ingest(url: str, records: list[CallRecord], finisher: bool) -> tuple[float, float, float]:
    """(records/s, the gateway's CPU µs a record, the recorder processes' CPU µs a record)."""
    config = ChildConfig(
        database=url, queue_size=Settings.queue_size, batch_size=Settings.batch_size, finisher_process=finisher
    )
    recorder = RemoteRecorder(config, idle=False)  # (normal class: the rate, not the priority, is measured)
    recorder.start()
    await asyncio.sleep(0.5)  # the process is up
    cpu_before, t0, c0 = children_cpu(), time.perf_counter(), time.process_time()
    i = 0
    while i < len(records):
        turn = i + 200  # a loop turn's records go out in one write, as the gateway's do
        while i < min(turn, len(records)) and recorder.submit_nowait(records[i]):
            i += 1
        await asyncio.sleep(0 if i == turn else 0.001)
    while recorder.depth:
        await asyncio.sleep(0.002)
    seconds, gateway_cpu = time.perf_counter() - t0, time.process_time() - c0
    await asyncio.to_thread(recorder.stop)
    n = len(records)
    return n / seconds, gateway_cpu / n * 1e6, (children_cpu() - cpu_before) / n * 1e6


def fresh_database(url: str | None, tmp: str, label: str) -> str:
    if url is None:
        url = f"sqlite:///{tmp}/ingest-{label}.db"
        migrate(Database(url))
        return url
    db = Database(url)
    migrate(db)
    with db.transaction() as tx:  # (rollups keep their sums: the rate, not the totals, is measured)
        for table in ("record_tags", "record_bodies", "records"):
            tx.execute(f"DELETE FROM {table}")
    return url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--database", help="a PostgreSQL URL (default: a fresh SQLite file a run)")
    args = ap.parse_args()
    scale.tune_gc()
    rates: dict[str, list[float]] = {"finisher process": [], "in the recorder process": []}
    print(f"{args.records:,} records a run, {os.cpu_count()} CPUs, {args.database or 'SQLite'}")
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = list(rates) if round_ % 2 == 0 else list(reversed(rates))
            for label in order:
                rnd = random.Random(99 + round_)
                now = time.time()
                made = (scale.synthetic(rnd, now - 60, 60) for _ in range(args.records))
                records = sorted(made, key=lambda r: r.start)
                url = fresh_database(args.database, tmp, f"{round_}-{label[:3]}")
                rate, gateway, recorder = asyncio.run(ingest(url, records, label == "finisher process"))
                rates[label].append(rate)
                print(
                    f"  round {round_ + 1}, {label:>24}: {rate:>7,.0f} records/s; CPU a record: "
                    f"gateway {gateway:.1f} µs, recorder processes {recorder:.1f} µs",
                    flush=True,
                )
    on, off = (statistics.median(rates[k]) for k in rates)
    print(f"median: finisher process {on:,.0f}, in the recorder process {off:,.0f} records/s ({on / off:.2f}x)")


if __name__ == "__main__":
    main()
