"""Issue 13 item 4: every grader judges the final answer, on tricky replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmeter.bench.answers import final_choice, final_json
from modelmeter.bench.eval import EvalConfig, load_items
from modelmeter.bench.grading import GradingError, check_expected, grade
from modelmeter.bench.runner import BenchError


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        ("3.14", True),
        ("pi is about 3.1416", True),  # within 0.01
        ("The answer is 3.15, roughly", True),
        ("3.2", False),
        ("3.14 is close, but the answer is 4", False),  # the explicit answer is judged
        ("22/7 = 3.142857", True),
        ("It is 3", False),
    ],
)
def test_number_with_absolute_tolerance(answer: str, ok: bool) -> None:
    assert grade(answer, "3.14159", "number", 0.01) is ok, answer


def test_number_with_relative_tolerance_and_none() -> None:
    assert grade("about 1,010 people", "1000", "number", "1%")
    assert not grade("about 1,011 people", "1000", "number", "1%")
    assert grade("-99.5", "-100", "number", "0.5%") and not grade("-99.4", "-100", "number", "0.5%")
    assert not grade("12.0001", "12", "number")  # no tolerance: exact
    with pytest.raises(GradingError):
        check_expected("1", "number", "-1")
    with pytest.raises(GradingError):
        check_expected("twelve", "number")


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B", "B"),
        ("(c)", None),  # lower case in parentheses alone is not taken for a letter
        ("**C**", "C"),
        ("C) Paris", "C"),
        ("D. Because the others are wrong", "D"),
        ("The answer is (B).", "B"),
        ("Answer: d", "D"),
        ("A is tempting, but the correct option is C.", "C"),
        ("I think (A) and (B) are wrong; it must be (D)", "D"),
        ("A model might say so.", None),  # an article, not a choice
        ("I would pick none of these", None),
        ("", None),
    ],
)
def test_final_choice(answer: str, letter: str | None) -> None:
    assert final_choice(answer) == letter, answer


def test_choice_grader() -> None:
    assert grade("The correct answer is **B**", "B", "choice")
    assert not grade("B is wrong; answer: C", "B", "choice")
    assert grade("Answer: c", ["c"], "choice") and not grade("c", "c", "choice")  # a bare "c" is no letter
    with pytest.raises(GradingError):
        check_expected("Z", "choice")


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        ('{"name": "Ada", "age": 36}', True),
        ('```json\n{"name": "Ada", "age": 36}\n```', True),
        ('Here it is: {"name": "Ada", "age": 36}. Done.', True),
        ('{"name": "Ada", "age": -1}', False),
        ('{"name": "Ada"}', False),
        ('{"name": "Ada", "age": 36, "x": 1}', False),
        ("{name: Ada, age: 36}", False),  # not JSON
        ('{"name": "Ada", "age": "36"}', False),
        ("no json here", False),
    ],
)
def test_json_schema_grader(answer: str, ok: bool) -> None:
    assert grade(answer, SCHEMA, "json_schema") is ok, answer


def test_final_json_prefers_the_last_fence() -> None:
    assert final_json('```json\n{"a": 1}\n```\nor rather\n```json\n{"a": 2}\n```') == (True, {"a": 2})
    assert final_json("[1, 2]") == (True, [1, 2])


def test_bad_schema_and_grader_override(tmp_path: Path) -> None:
    with pytest.raises(GradingError, match="not a valid JSON Schema"):
        check_expected({"type": "nope"}, "json_schema")
    path = tmp_path / "e.jsonl"
    path.write_text('{"prompt": "pi?", "expected": "3.14159", "match": "exact"}\n')
    items = load_items(EvalConfig(model="m", run_id="t", dataset=str(path), grader="number", tolerance="0.1%"))
    assert items[0].match == "number" and grade("3.141", items[0].expected, items[0].match, items[0].tolerance)
    with pytest.raises(BenchError, match="is not a choice letter"):
        load_items(EvalConfig(model="m", run_id="t", dataset=str(path), grader="choice"))


def test_exact_contains_regex_judge_the_whole_answer() -> None:
    assert grade("  Paris. ", "paris", "exact") and not grade("Paris, France", "paris", "exact")
    assert grade("It is Paris, France", "paris", "contains")
    assert grade("the colour is #ff0000", r"#[0-9a-f]{6}\b", "regex")
    assert not grade(None, "x", "contains")
