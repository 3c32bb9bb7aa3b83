"""Finding the final answer in a model's reply: a multiple-choice letter, or a JSON value.

Models wrap answers in prose and markdown ("**Answer: (B)**", "```json … ```"); the grader must
judge what the reply gives as its answer, not a letter or brace that merely occurs in it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_LETTER = r"\(?\**([A-J])\**\)?"
# "answer is B", "Answer: (C)", "correct option is D", "the correct choice: E"
_EXPLICIT = re.compile(r"\b(?:answer|option|choice)\b(?:\s+is)?[\s:=*]*" + _LETTER + r"(?![\w])", re.IGNORECASE)
_ALONE = re.compile(r"^[\s*_`>\"']*" + _LETTER + r"[\s.:)*_`\"']*$")
_LEADING = re.compile(r"^[\s*_`>]*\(?([A-J])[).:](?:\s|$)")
_PARENS = re.compile(r"\(([A-J])\)")
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def final_choice(answer: str) -> str | None:
    """The letter the reply answers with (upper case), or None. In order: the last explicit
    "answer is X"; a reply that is only a letter; one that starts "X)" / "X." / "(X)"; the last
    "(X)". A bare capital elsewhere ("A model might…", "I think") is never taken for a choice."""
    explicit = _EXPLICIT.findall(answer)
    if explicit:
        return str(explicit[-1]).upper()
    for pattern in (_ALONE, _LEADING):
        found = pattern.match(answer)
        if found:
            return found.group(1).upper()
    parens = _PARENS.findall(answer)
    return str(parens[-1]) if parens else None


def _parse(text: str) -> tuple[bool, Any]:
    try:
        return True, orjson.loads(text.strip())
    except orjson.JSONDecodeError:
        return False, None


def final_json(answer: str) -> tuple[bool, Any]:
    """(found, value): the reply as JSON; else the last fenced block; else the outermost
    ``{…}`` / ``[…]`` span in the prose."""
    found, value = _parse(answer)
    if found:
        return found, value
    fences = _FENCE.findall(answer)
    if fences:
        return _parse(fences[-1])
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = answer.find(opener), answer.rfind(closer)
        if 0 <= start < end:
            found, value = _parse(answer[start : end + 1])
            if found:
                return found, value
    return False, None
