"""Grading one evaluation answer against its expected value.

* exact: the answer equals ``expected`` once both are trimmed, lower-cased, with runs of white
  space made one space and a trailing full stop dropped;
* contains: ``expected``, so normalised, occurs in the answer, so normalised;
* regex: ``re.search(expected, answer)`` finds a match;
* number: the answer's *final* number equals ``expected`` as a number. The final number is the
  one after the last explicit "answer: X" / "answer is X" if there is one, else the last number
  in the answer. A number that only echoes the question ("144 divided by 12 is 1.44") is not
  the answer, so it does not count. Thousands separators (``3,600``) and trailing zeros
  (``12.0``) are normalised away.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

MATCHES = ("exact", "contains", "regex", "number")

# A number not glued to a word or to another number's digits: "tok12" and the "44" of "1.44" are
# not numbers of their own. Thousands groups only with exactly three digits ("1,440", not "12,13").
_NUMBER = r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])"
_ANY_NUMBER = re.compile(_NUMBER)
_EXPLICIT = re.compile(r"\banswer\b(?:\s+is)?[\s:=*]*(?:\$\s*)?(" + _NUMBER + ")", re.IGNORECASE)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold().rstrip(".")


def to_number(text: str) -> Decimal | None:
    """``"3,600"`` → 3600, ``"−2.50"`` → -2.5; None when ``text`` is not one number."""
    cleaned = text.strip().replace(",", "").replace("−", "-")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def final_number(answer: str) -> Decimal | None:
    """The number an answer gives as its result (see the module docstring), or None."""
    explicit = _EXPLICIT.findall(answer)
    if explicit:
        return to_number(explicit[-1])
    numbers = _ANY_NUMBER.findall(answer)
    return to_number(numbers[-1]) if numbers else None


def grade(answer: str | None, expected: Any, match: str) -> bool:
    if answer is None:
        return False
    options = expected if isinstance(expected, list) else [expected]
    given = final_number(answer) if match == "number" else None
    for option in options:
        wanted = str(option)
        if match == "exact" and _norm(answer) == _norm(wanted):
            return True
        if match == "contains" and _norm(wanted) in _norm(answer):
            return True
        if match == "regex" and re.search(wanted, answer):
            return True
        if match == "number" and given is not None and given == to_number(wanted):
            return True
    return False
