"""Grading one evaluation answer against its expected value. Every grader judges the answer's
*final* answer, never an echo of the question:

* exact: the answer equals ``expected`` once both are trimmed, lower-cased, with runs of white
  space made one space and a trailing full stop dropped;
* contains: ``expected``, so normalised, occurs in the answer, so normalised;
* regex: ``re.search(expected, answer)`` finds a match;
* number: the answer's *final* number equals ``expected`` as a number, within the item's
  ``tolerance`` (absolute, or relative as ``"1%"``). The final number is the one after the last
  explicit "answer: X" / "answer is X" if there is one, else the last number in the answer. A
  number that only echoes the question ("144 divided by 12 is 1.44") is not the answer, so it
  does not count. Thousands separators (``3,600``) and trailing zeros (``12.0``) are normalised away;
* choice: the answer's final multiple-choice letter (A–J; :mod:`modelmeter.bench.answers`) is
  ``expected``;
* json_schema: the answer (fences and prose around it dropped) is JSON valid against the JSON
  Schema ``expected``;
* grid: the answer's last grid of digits (:mod:`modelmeter.bench.grids`: spaces, commas, brackets,
  fences and prose tolerated) equals the grid ``expected`` (rows of digits 0-9, or the same as
  text), cell for cell and in shape.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from modelmeter.bench import grids
from modelmeter.bench.answers import final_choice, final_json

MATCHES = ("exact", "contains", "regex", "number", "choice", "json_schema", "grid")

# A number not glued to a word or to another number's digits: "tok12" and the "44" of "1.44" are
# not numbers of their own. Thousands groups only with exactly three digits ("1,440", not "12,13").
_NUMBER = r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])"
_ANY_NUMBER = re.compile(_NUMBER)
_EXPLICIT = re.compile(r"\banswer\b(?:\s+is)?[\s:=*]*(?:\$\s*)?(" + _NUMBER + ")", re.IGNORECASE)


class GradingError(ValueError):
    """An expected value or tolerance a grader cannot use (a data set error)."""


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


def parse_tolerance(tolerance: Any) -> tuple[Decimal, bool]:
    """(amount, relative): ``0.01`` → (0.01, False); ``"1%"`` → (0.01, True)."""
    if tolerance is None:
        return Decimal(0), False
    text = str(tolerance).strip()
    relative = text.endswith("%")
    value = to_number(text[:-1] if relative else text)
    if value is None or value < 0 or isinstance(tolerance, bool):
        raise GradingError(f"tolerance must be a number >= 0 or a percentage like '1%', not {tolerance!r}")
    return (value / 100 if relative else value), relative


def check_expected(expected: Any, match: str, tolerance: Any = None) -> None:
    """Raise GradingError when ``expected`` cannot be graded with ``match``."""
    if match not in MATCHES:
        raise GradingError("'match' must be " + ", ".join(MATCHES[:-1]) + f" or {MATCHES[-1]}")
    parse_tolerance(tolerance)
    if match == "grid":  # one grid (a list of rows), never a list of options
        if grids.as_grid(expected) is None:
            raise GradingError(f"expected {expected!r} is not a grid: rows of equal length of digits 0-9")
        return
    options = expected if isinstance(expected, list) else [expected]
    for option in options:
        if match == "regex":
            try:
                re.compile(str(option))
            except re.error as exc:
                raise GradingError(f"bad regex {option!r}: {exc}") from None
        elif match == "number" and to_number(str(option)) is None:
            raise GradingError(f"expected {option!r} is not a number")
        elif match == "choice" and not re.fullmatch(r"[A-Ja-j]", str(option).strip()):
            raise GradingError(f"expected {option!r} is not a choice letter A-J")
        elif match == "json_schema":
            _schema_check(expected)
            return


def _schema_check(schema: Any) -> None:
    import jsonschema  # only evals with a JSON-schema grader pay for the import

    if not isinstance(schema, dict | bool):
        raise GradingError("a json_schema 'expected' must be a JSON Schema object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise GradingError(f"'expected' is not a valid JSON Schema: {exc.message}") from None


def _schema_valid(answer: str, schema: Any) -> bool:
    import jsonschema

    found, value = final_json(answer)
    if not found:
        return False
    validator = jsonschema.validators.validator_for(schema)(schema)
    return bool(validator.is_valid(value))


def _close(given: Decimal, wanted: Decimal, tolerance: Any) -> bool:
    amount, relative = parse_tolerance(tolerance)
    limit = amount * abs(wanted) if relative else amount
    return abs(given - wanted) <= limit


def grade(answer: str | None, expected: Any, match: str, tolerance: Any = None) -> bool:
    if answer is None:
        return False
    if match == "json_schema":
        return _schema_valid(answer, expected)
    if match == "grid":
        grid = grids.as_grid(expected)
        return grid is not None and grids.final_grid(answer) == grid
    options = expected if isinstance(expected, list) else [expected]
    given = final_number(answer) if match == "number" else None
    letter = final_choice(answer) if match == "choice" else None
    for option in options:
        wanted = str(option)
        if match == "exact" and _norm(answer) == _norm(wanted):
            return True
        if match == "contains" and _norm(wanted) in _norm(answer):
            return True
        if match == "regex" and re.search(wanted, answer):
            return True
        if match == "number" and given is not None:
            target = to_number(wanted)
            if target is not None and _close(given, target, tolerance):
                return True
        if match == "choice" and letter is not None and letter == wanted.strip().upper():
            return True
    return False
