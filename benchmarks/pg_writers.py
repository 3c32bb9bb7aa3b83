"""Two writer processes on one PostgreSQL against one (issue 17: two writers >= 1.6x one, rollups exact).

    python benchmarks/pg_writers.py                       # 100,000 records a run, three rounds
    python benchmarks/pg_writers.py --records 200000 --rounds 2

Each run gets a throwaway database. Every writer process makes its share of the records first
(``scale.py``'s mix, priced with ``finish``, in time order over the last minutes, as live traffic
arrives), waits at a barrier, then stores them with ``insert_rows`` in the server's batch size (what
the recorder's writer thread does). Printed per run: records/s over the wall time from the barrier
to the last commit, the writers' own CPU and PostgreSQL's backends' CPU (from /proc) per record,
and whether the rollups (three resolutions) and the hourly top-N rollups still equal the raw rows.
Then the ratio of two writers to one, per round.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pg_databases
from scale import synthetic
from tests.pg_databases import PG_ADMIN, temp_database

from modelmeter.config import Settings
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import finish
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.storage.records import insert_rows
from modelmeter.storage.rollups import RESOLUTIONS

TICK = os.sysconf("SC_CLK_TCK")


def backends_cpu(url: str) -> float:
    """CPU seconds used so far by every PostgreSQL backend of this database (its pids' /proc stat)."""
    db = Database(url)
    try:
        pids = [p for (p,) in db.fetchall("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    finally:
        db.close()
    return sum(_cpu(pid) for pid in pids)


def _cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def writer(url: str, n: int, seed: int, barrier: mp.synchronize.Barrier, out: mp.Queue) -> None:  # type: ignore[name-defined]
    rnd = random.Random(seed)
    pricer = Pricer()
    now = time.time()
    records = sorted((synthetic(rnd, now - 300, 300) for _ in range(n)), key=lambda r: r.start)
    rows = [finish(r, pricer) for r in records]
    db = Database(url)
    (backend,) = db.fetchone("SELECT pg_backend_pid()") or (0,)
    barrier.wait()
    t0, c0, b0 = time.perf_counter(), time.process_time(), _cpu(backend)
    for i in range(0, n, Settings.batch_size):
        insert_rows(db, rows[i : i + Settings.batch_size])
    out.put((t0, time.perf_counter(), time.process_time() - c0, _cpu(backend) - b0))
    db.close()


def exact(url: str) -> str:
    db = Database(url)
    try:
        count, spend = db.fetchone("SELECT COUNT(*), SUM(spend_pusd) FROM records") or (0, 0)
        checks = []
        for res in RESOLUTIONS:
            got = db.fetchone(f"SELECT SUM(requests), SUM(spend_pusd) FROM {res.table}")
            checks.append(tuple(int(v or 0) for v in got or (0, 0)) == (count, spend))
        for dim in ("key", "user", "session", "tag"):
            (got,) = db.fetchone("SELECT SUM(requests) FROM rollup_top_hour WHERE dim = :d", {"d": dim}) or (0,)
            checks.append(dim == "tag" or int(got or 0) == count)
    finally:
        db.close()
    return f"{count:,} records, rollups {'exact' if all(checks) else 'NOT EXACT'}"


def run(admin: str, n: int, writers: int) -> float:
    with temp_database("mm_writers", admin) as url:
        db = Database(url)
        migrate(db)
        db.close()
        ctx = mp.get_context("spawn")
        barrier, out = ctx.Barrier(writers), ctx.Queue()
        procs = [ctx.Process(target=writer, args=(url, n // writers, 1000 + i, barrier, out)) for i in range(writers)]
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        wall = max(r[1] for r in results) - min(r[0] for r in results)
        rate = n // writers * writers / wall
        own = sum(r[2] for r in results) / n * 1e6
        pg = sum(r[3] for r in results) / n * 1e6
        print(
            f"  {writers} writer{'s' if writers > 1 else ' '}: {rate:>8,.0f} records/s  "
            f"writers' CPU {own:5.1f} µs/record, PostgreSQL's {pg:5.1f}  ({exact(url)})",
            flush=True,
        )
        return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin", default=PG_ADMIN)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; {args.records:,} records a run, batches of {Settings.batch_size:,}")
    ratios = []
    for i in range(args.rounds):
        print(f"round {i + 1}")
        one = run(args.admin, args.records, 1)
        two = run(args.admin, args.records, 2)
        ratios.append(two / one)
        print(f"  two / one: {ratios[-1]:.2f}x")
    print(f"two writers / one, median of {len(ratios)}: {statistics.median(ratios):.2f}x (target >= 1.6x)")


if __name__ == "__main__":
    main()
