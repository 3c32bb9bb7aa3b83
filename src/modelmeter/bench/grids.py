"""Grids of digits (ARC-style puzzles): finding the grid a model's reply gives as its answer, and
writing a grid as text the way a prompt shows it.

Replies wrap grids in prose, code fences, brackets and commas ("```\\n[[0, 1],\\n [1, 0]]\\n```",
"1,0,1", "| 1 | 0 |"), and often echo the test input before the answer: the answer is the *last*
grid-shaped block (rectangular rows of digits). Every cell is one digit 0-9, as in ARC, so "101"
and "1 0 1" are the same row.
"""

from __future__ import annotations

import re
from typing import Any

Grid = list[list[int]]

# What may surround or separate the digits of one row: brackets, commas, bars, quotes, backticks.
_NOISE = re.compile(r"[\s\[\](){}|,;'\"`]")
# A grid written inside one line of prose, JSON-style: "the output is [[1, 2], [3, 4]]."
_INLINE = re.compile(r"\[\s*\[[\d\s,\[\]]*\]\s*\]")
_TWO_ROWS = re.compile(r"\]\s*,?\s*\[")  # "[1, 2], [3, 4]" on one line: rows, not one row


def _row(line: str) -> list[int] | None:
    if _TWO_ROWS.search(line):
        return None
    cells = _NOISE.sub("", line)
    return [int(c) for c in cells] if cells and cells.isascii() and cells.isdigit() else None


def _rectangular(rows: Grid) -> bool:
    return bool(rows) and all(len(r) == len(rows[0]) for r in rows)


def _line_blocks(text: str) -> list[tuple[int, Grid]]:
    """(end offset, rows) of each run of consecutive row lines; a fence, prose or blank line ends one."""
    blocks: list[tuple[int, Grid]] = []
    rows: Grid = []
    offset = 0
    for line in text.splitlines(keepends=True):
        row = _row(line)
        if row is not None:
            rows.append(row)
        elif rows:
            blocks.append((offset, rows))
            rows = []
        offset += len(line)
    if rows:
        blocks.append((offset, rows))
    return blocks


def _inline_blocks(text: str) -> list[tuple[int, Grid]]:
    blocks: list[tuple[int, Grid]] = []
    for found in _INLINE.finditer(text):
        inner = found.group(0).strip()[1:-1]  # "[1, 2], [3, 4]": one row per bracket pair
        rows = [_row(part) for part in re.findall(r"\[([^\[\]]*)\]", inner)]
        if rows and all(r is not None for r in rows):
            blocks.append((found.end(), [r for r in rows if r is not None]))
    return blocks


def final_grid(answer: str) -> Grid | None:
    """The grid the reply ends with (see the module docstring), or None when it gives none."""
    candidates = [b for b in _line_blocks(answer) + _inline_blocks(answer) if _rectangular(b[1])]
    if not candidates:
        return None
    # The block that ends last; at the same end (a JSON grid on its own lines is found both ways)
    # the larger one, so "[[1, 2],\n [3, 4]]" is one grid, not its last row.
    return max(candidates, key=lambda b: (b[0], len(b[1])))[1]


def as_grid(value: Any) -> Grid | None:
    """An expected grid as a data set gives it: a list of rows of digits 0-9, or the same as text."""
    if isinstance(value, str):
        return final_grid(value)
    if not isinstance(value, list) or not value:
        return None
    rows: Grid = []
    for row in value:
        if not isinstance(row, list) or not row:
            return None
        if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 9 for c in row):
            return None
        rows.append([int(c) for c in row])
    return rows if _rectangular(rows) else None


def render(grid: Grid) -> str:
    """One row per line, cells separated by spaces: how prompts show grids and answers should too."""
    return "\n".join(" ".join(str(c) for c in row) for row in grid)
