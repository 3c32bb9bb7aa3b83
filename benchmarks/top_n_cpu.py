"""CPU per record of the writer's top-N step (``top_rollups.add_rows``: hourly lists of keys,
users, tags and sessions, and their upserts), for one or more source trees, alternated.

    python benchmarks/top_n_cpu.py --tree /path/to/old/src --tree src --rounds 3

Each run builds the same synthetic records (scale.py's mix, 3 hours, in time order, as a gateway's
arrive), stores them with ``insert_rows`` in batches of 2,000 into a fresh SQLite file, and counts
the process CPU time spent inside ``add_rows`` only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

RUN = r"""
import random, sys, tempfile, time
sys.path.insert(0, {bench!r})
import scale
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import finish
from modelmeter.storage import records, top_rollups
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate

rnd, pricer = random.Random(5), Pricer()
t0 = time.time() - 3 * 3600
rows = sorted((finish(scale.synthetic(rnd, t0, 3 * 3600), pricer) for _ in range({n})), key=lambda r: r["start_us"])
db = Database(f"sqlite:///{{tempfile.mkdtemp()}}/t.db")
migrate(db)
cpu = 0.0
real = top_rollups.add_rows
def timed(*a):
    global cpu
    c = time.process_time()
    real(*a)
    cpu += time.process_time() - c
records.top_rollups.add_rows = timed
for i in range(0, len(rows), 2000):
    records.insert_rows(db, rows[i : i + 2000])
print(cpu / len(rows) * 1e6)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", action="append", required=True, help="a src folder (repeat to compare)")
    ap.add_argument("--records", type=int, default=60_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    code = RUN.format(bench=str(Path(__file__).parent), n=a.records)
    for r in range(a.rounds):
        for tree in a.tree:
            env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            print(f"round {r + 1}  {tree}: {float(out.stdout.strip()):.2f} µs of CPU a record in add_rows", flush=True)


if __name__ == "__main__":
    main()
