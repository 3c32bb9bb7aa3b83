"""Ingest rate of two source trees, alternated in one run (the same machine load for both).

    python benchmarks/ingest_ab.py --before /work/main/src --after src --records 100000 --rounds 3

Each round runs ``scale.py --ingest-only`` (CallRecords through the batch writer into a fresh
SQLite database) once with each tree on PYTHONPATH, and prints both rates and their ratio.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the src folder of the baseline tree")
    ap.add_argument("--after", required=True, help="the src folder of the changed tree")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    before: list[float] = []
    after: list[float] = []
    for i in range(args.rounds):
        before.append(rate(args.before, args.records, None))
        after.append(rate(args.after, args.records, None))
        print(f"round {i + 1}: before {before[-1]:,.0f} records/s, after {after[-1]:,.0f} records/s", flush=True)
    b, a = statistics.median(before), statistics.median(after)
    print(f"median: before {b:,.0f} records/s, after {a:,.0f} records/s, after/before = {a / b:.3f}")


if __name__ == "__main__":
    main()
