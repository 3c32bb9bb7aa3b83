"""Ingest rate of two source trees, alternated in one run (the same machine load for both).

    python benchmarks/ingest_ab.py --before /work/main/src --after src --records 100000 --rounds 3

Each round runs ``scale.py --ingest-only`` (CallRecords through the batch writer into a fresh
SQLite database) once with each tree on PYTHONPATH (the order alternating), and prints both rates
and their ratio. On a shared, loaded machine wall-clock rates swing; so each round also measures
the CPU time (not wall time) per record of the steps: ``finish`` (the finisher: pricing, the row),
``insert_rows`` (the writer's transaction, batches of 2,000) and its rollup step alone
(``rollups.add_rows``: bucket sums and upserts into the three resolutions).
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


_STEPS_CPU = """
import random, sys, tempfile, time
sys.path.insert(0, {bench!r})
from scale import synthetic
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import finish
from modelmeter.storage import rollups
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.storage.records import insert_rows
rnd, pricer = random.Random(5), Pricer()
recs = sorted((synthetic(rnd, time.time() - 60, 60) for _ in range({n})), key=lambda r: r.start)
finish(recs[0], pricer)
t0 = time.process_time()
rows = [finish(r, pricer) for r in recs]
out = [time.process_time() - t0]
with tempfile.TemporaryDirectory() as tmp:
    for step in ("insert_rows", "rollups"):
        db = Database(f"sqlite:///{{tmp}}/{{step}}.db")
        migrate(db)
        t0 = time.process_time()
        for i in range(0, len(rows), 2000):
            if step == "insert_rows":
                insert_rows(db, rows[i : i + 2000])
            else:
                with db.transaction() as tx:
                    rollups.add_rows(db, tx, rows[i : i + 2000])
        out.append(time.process_time() - t0)
        db.close()
print(" ".join(str(s / len(rows) * 1e6) for s in out))
"""
STEPS = ("finish", "insert_rows", "rollup step")


def steps_cpu_us(src: str, n: int) -> list[float]:
    """CPU time per record (not wall time) of: ``finish`` (pricing and building the row),
    ``insert_rows`` (batches of 2,000 finished rows: the writer's whole transaction) and, within
    it, ``rollups.add_rows`` (the three resolutions' bucket sums and upserts)."""
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    code = _STEPS_CPU.format(bench=str(SCALE.parent), n=n)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return [float(x) for x in out.split()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the src folder of the baseline tree")
    ap.add_argument("--after", required=True, help="the src folder of the changed tree")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rates: dict[str, list[float]] = {"before": [], "after": []}
    cpu: dict[str, list[list[float]]] = {"before": [], "after": []}
    for i in range(args.rounds):
        for label in ("before", "after") if i % 2 == 0 else ("after", "before"):  # each order in turn
            src = args.before if label == "before" else args.after
            rates[label].append(rate(src, args.records, None))
            cpu[label].append(steps_cpu_us(src, args.records))
        print(f"round {i + 1}:", flush=True)
        for label in ("before", "after"):
            steps = ", ".join(f"{s} {c:.1f}" for s, c in zip(STEPS, cpu[label][-1], strict=True))
            print(f"  {label:6s} through the recorder {rates[label][-1]:>7,.0f} records/s; CPU us/record: {steps}")
    b, a = statistics.median(rates["before"]), statistics.median(rates["after"])
    print(f"median through the recorder: before {b:,.0f} records/s, after {a:,.0f}, after/before = {a / b:.3f}")
    for k, step in enumerate(STEPS):
        cb = statistics.median(c[k] for c in cpu["before"])
        ca = statistics.median(c[k] for c in cpu["after"])
        print(f"median {step} CPU: before {cb:.1f} us/record, after {ca:.1f} ({ca - cb:+.1f})")


if __name__ == "__main__":
    main()
