"""Ingest rate of two source trees, alternated in one run (the same machine load for both).

    python benchmarks/ingest_ab.py --before /work/main/src --after src --records 100000 --rounds 3

Each round runs ``scale.py --ingest-only`` (CallRecords through the batch writer into a fresh
SQLite database) once with each tree on PYTHONPATH, and prints both rates and their ratio. On a
shared, loaded machine wall-clock rates swing; so each round also measures the CPU time (not wall
time) of the writer's rollup step alone (``rollups.add_rows``: bucket sums and upserts into the
three resolutions, batches of 2,000 finished rows in one SQLite transaction), per record.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SCALE = Path(__file__).with_name("scale.py")


def rate(src: str, n: int, database: str | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = database or f"sqlite:///{tmp}/ingest.db"
        env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
        out = subprocess.run(
            [sys.executable, str(SCALE), "--database", url, "--ingest", str(n), "--ingest-only"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    found = re.search(r"([\d,]+) records/s", out)
    if found is None:
        raise SystemExit(f"no ingest rate in:\n{out}")
    return float(found.group(1).replace(",", ""))


_ROLLUP_CPU = """
import random, sys, tempfile, time
sys.path.insert(0, {bench!r})
from scale import synthetic
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import finish
from modelmeter.storage import rollups
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
rnd, pricer = random.Random(5), Pricer()
rows = [finish(synthetic(rnd, time.time() - 60, 60), pricer) for _ in range({n})]
rows.sort(key=lambda r: r["start_us"])
with tempfile.TemporaryDirectory() as tmp:
    db = Database(f"sqlite:///{{tmp}}/cpu.db")
    migrate(db)
    t0 = time.process_time()
    for i in range(0, len(rows), 2000):
        with db.transaction() as tx:
            rollups.add_rows(db, tx, rows[i : i + 2000])
    print((time.process_time() - t0) / len(rows) * 1e6)
"""


def rollup_cpu_us(src: str, n: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    code = _ROLLUP_CPU.format(bench=str(SCALE.parent), n=n)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the src folder of the baseline tree")
    ap.add_argument("--after", required=True, help="the src folder of the changed tree")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    before: list[float] = []
    after: list[float] = []
    cpu_before: list[float] = []
    cpu_after: list[float] = []
    for i in range(args.rounds):
        before.append(rate(args.before, args.records, None))
        after.append(rate(args.after, args.records, None))
        cpu_before.append(rollup_cpu_us(args.before, args.records))
        cpu_after.append(rollup_cpu_us(args.after, args.records))
        print(
            f"round {i + 1}: ingest before {before[-1]:,.0f} records/s, after {after[-1]:,.0f} records/s; "
            f"rollup step CPU before {cpu_before[-1]:.2f} us/record, after {cpu_after[-1]:.2f} us/record",
            flush=True,
        )
    b, a = statistics.median(before), statistics.median(after)
    print(f"median ingest: before {b:,.0f} records/s, after {a:,.0f} records/s, after/before = {a / b:.3f}")
    cb, ca = statistics.median(cpu_before), statistics.median(cpu_after)
    print(f"median rollup step CPU: before {cb:.2f} us/record, after {ca:.2f} us/record (+{ca - cb:.2f})")


if __name__ == "__main__":
    main()
