"""Issue 11 item 17: the bundled eval grades the final answer, not any echo of the question's numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from modelmeter.bench.eval import EvalConfig, grade, load_items
from modelmeter.bench.grading import final_number


def bundled(question: str) -> tuple[object, str]:
    """(expected, match) of the bundled item whose prompt starts with ``question``."""
    items = load_items(EvalConfig(model="gpt-4o", run_id="t"))
    found = [i for i in items if str(i.body["messages"][-1]["content"]).startswith(question)]
    assert len(found) == 1, question
    return found[0].expected, found[0].match


@pytest.mark.parametrize(
    "answer",
    [
        "144 divided by 12 is 1.44.",  # the example: echoes 144 and 12, answers 1.44
        "144 / 12 = 11",
        "12 times 12 is 144",  # the question's numbers, then a wrong result
        "120",
        "1.2",
        "The answer is 13, since 144 / 12 = 12",  # an explicit answer wins over a later number
        "tok12",
        "",
        "twelve-ish, roughly 12.5",
    ],
)
def test_wrong_answers_to_144_over_12_are_wrong(answer: str) -> None:
    expected, match = bundled("What is 144 divided by 12?")
    assert not grade(answer, expected, match), answer


@pytest.mark.parametrize(
    "answer",
    [
        "12",
        " 12. ",
        "12.0",
        "144 divided by 12 is 12.",
        "144 / 12 = 12",
        "Answer: 12",
        "**Answer:** 12 (because 12 x 12 = 144)",
        "The answer is 12. Check: 12 * 12 = 144.",
        "The final answer is 12",
    ],
)
def test_right_answers_to_144_over_12_are_right(answer: str) -> None:
    expected, match = bundled("What is 144 divided by 12?")
    assert grade(answer, expected, match), answer


def test_thousands_decimals_and_signs_are_normalised() -> None:
    expected, match = bundled("How many seconds are in 1 hour?")
    assert grade("3,600", expected, match) and grade("There are 3600 seconds.", expected, match)
    assert not grade("36,00", expected, match) and not grade("60 x 60 = 360", expected, match)
    expected, match = bundled("How many centimeters are in 1 inch?")
    assert grade("2.540", expected, match) and grade("1 inch is 2.54 cm.", expected, match)
    assert not grade("2.5", expected, match) and not grade("254", expected, match)
    assert final_number("It went from 5 to −3") == Decimal(-3)
    assert final_number("no digits here") is None


def test_number_match_in_a_user_dataset_takes_a_list() -> None:
    assert grade("about 0.5", ["1/2", "0.5"], "number")
    assert not grade("0.25 or 0.5? 0.25", ["0.5"], "number")
