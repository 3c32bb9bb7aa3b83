"""Retention on PostgreSQL: a day of records pruned by dropping its partitions (migration 0020)
against the same day deleted row by row, side by side in one run.

Row by row is what retention did for every day before 0020, and still does for the DEFAULT
partition (rows of a day that has no partition): here one day is stored in its partitions and
another, of the same size and mix, in the DEFAULT partition, so both are pruned by today's
``storage.retention.prune`` (batches of 1,000, no pause) in the same database. Printed: seconds,
records removed, the space the five per-record tables held, their dead rows afterwards, and what
the VACUUM that row-by-row deleting needs costs.

    python benchmarks/prune.py                       # 200,000 records a day, bodies on every record
    python benchmarks/prune.py --records 50000 --bodies 0.05
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pg_databases
from scale import synthetic
from tests.pg_databases import PG_ADMIN, temp_database

from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import finish
from modelmeter.storage import partitions
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.storage.records import insert_rows
from modelmeter.storage.retention import Retention, prune

DAY_US = partitions.DAY_US


def fill_day(db: Database, day: int, n: int, bodies: float, seed: int) -> None:
    rnd, pricer = random.Random(seed), Pricer()
    recs = [synthetic(rnd, day * 86400.0, 86400.0) for _ in range(n)]
    for rec in recs:
        if rnd.random() < bodies:
            rec.request_body = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}]}
            rec.response_body = {"choices": [{"message": {"content": "y" * 600}}]}
        else:
            rec.request_body = rec.response_body = None
    recs.sort(key=lambda r: r.start)  # as the writer meets them: in time order
    for i in range(0, n, 2000):
        insert_rows(db, [finish(r, pricer) for r in recs[i : i + 2000]])


def tables(suffix: str) -> list[str]:
    return [f"{t}_{suffix}" for t in partitions.TABLES]


def size_mb(conn: psycopg.Connection, names: list[str]) -> float:
    total = 0
    for name in names:
        row = conn.execute("SELECT pg_total_relation_size(to_regclass(%s))", (name,)).fetchone()
        total += int(row[0] or 0) if row else 0
    return total / 2**20


def dead_rows(conn: psycopg.Connection, names: list[str]) -> int:
    """Counted in the tables (pgstattuple), not read from the statistics, which lag."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    total = 0
    for name in names:
        row = conn.execute("SELECT dead_tuple_count FROM pgstattuple(%s)", (name,)).fetchone()
        total += int(row[0]) if row else 0
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin", default=PG_ADMIN)
    ap.add_argument("--records", type=int, default=200_000, help="records in each of the two days")
    ap.add_argument("--bodies", type=float, default=1.0, help="share of records with bodies stored")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args()
    with temp_database("mm_prune", args.admin, keep=args.keep) as url:
        run(url, args.records, args.bodies)


def run(url: str, records: int, bodies: float) -> None:
    db = Database(url)
    try:
        migrate(db)
        today = int(time.time()) // 86400
        by_partition, row_by_row = today - 10, today - 12  # the latter gets no partition: DEFAULT
        partitions.ensure(db, by_partition * DAY_US, by_partition * DAY_US)
        t0 = time.perf_counter()
        fill_day(db, by_partition, records, bodies, 1)
        fill_day(db, row_by_row, records, bodies, 2)
        print(f"filled 2 days x {records:,} records ({time.perf_counter() - t0:.0f} s), bodies on {bodies:.0%}")
        day_tables = [partitions.name(t, by_partition) for t in partitions.TABLES]
        default_tables = tables("default")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
            held = size_mb(conn, day_tables), size_mb(conn, default_tables)
            cut = (by_partition + 1) * DAY_US
            t0 = time.perf_counter()
            dropped = partitions.drop_before(db, cut)
            drop_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            deleted = prune(db, Retention(records_days=(time.time() * 1e6 - cut) / DAY_US), batch=1000)["records"]
            delete_s = time.perf_counter() - t0
            left = size_mb(conn, default_tables)
            dead = dead_rows(conn, default_tables)
            t0 = time.perf_counter()
            for table in default_tables:
                conn.execute(f"VACUUM {table}")
            vacuum_s = time.perf_counter() - t0
            after_vacuum = size_mb(conn, default_tables)
        print(f"{'one day pruned':<34} {'dropped partitions':>20} {'row by row':>14}")
        print(f"{'records removed':<34} {dropped:>20,} {deleted:>14,}")
        print(f"{'seconds':<34} {drop_s:>20.3f} {delete_s:>14.2f}   ({delete_s / drop_s:,.0f}x)")
        print(f"{'space held before (5 tables)':<34} {held[0]:>17.0f} MB {held[1]:>11.0f} MB")
        print(f"{'space held after':<34} {0:>17.0f} MB {left:>11.0f} MB")
        print(f"{'dead rows left for VACUUM':<34} {0:>20,} {dead:>14,}")
        print(f"{'VACUUM of them (seconds, MB after)':<34} {'-':>20} {vacuum_s:>8.2f}, {after_vacuum:.0f} MB")
    finally:
        db.close()


if __name__ == "__main__":
    main()
