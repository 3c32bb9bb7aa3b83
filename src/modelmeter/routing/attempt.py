"""One attempt of a routed call: what it tells the breaker, and whether the call moves on.

The relay asks ``Try`` after each upstream answer or error (``_post_with_retries``), before any
byte reached the client: a fallback is only ever decided there, so a stream that has started is
never resent elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelmeter.routing.breaker import OUT_STATUSES, Breaker

FAILURE_KINDS = ("connect", "timeout", "protocol")  # UpstreamError kinds that count against a breaker


class Fallback(Exception):
    """The attempt failed before anything reached the client: try the next upstream."""


@dataclass(slots=True)
class Attempt:
    upstream: str  # the upstream's label
    t0: float  # perf_counter when it started
    status: int | None = None  # the upstream's HTTP status; None: no answer (connect error, timeout)
    error: str | None = None
    latency_ms: float | None = None
    served: bool = False  # its answer went to the client

    def as_json(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream,
            "status": self.status,
            "error": self.error,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "served": self.served,
        }


def matches(rules: tuple[str, ...], status: int | None, kind: str | None) -> bool:
    """Does this failure match ``fallback_on`` (statuses, "4xx"/"5xx", connect/timeout/protocol)?"""
    if kind is not None:
        return kind in rules
    assert status is not None
    return str(status) in rules or f"{status // 100}xx" in rules


class Try:
    """The routing side of one attempt, held by the call (``Call.route``) while it is relayed."""

    __slots__ = ("attempt", "breaker", "changed", "deadline", "more", "rules")

    def __init__(
        self,
        attempt: Attempt,
        breaker: Breaker,
        deadline: float,
        rules: tuple[str, ...],
        more: Callable[[], bool],
        changed: Callable[[], None],
    ) -> None:
        self.attempt, self.breaker, self.deadline, self.rules = attempt, breaker, deadline, rules
        self.more = more  # is there another upstream to try?
        self.changed = changed  # the breaker changed state (shared with other processes)

    def time_left(self) -> float:
        return self.deadline - time.perf_counter()

    def _may_move_on(self) -> bool:
        return self.more() and self.time_left() > 0.001

    def error(self, kind: str, message: str) -> bool:
        """No answer (connect error, timeout …); True: fall back to the next upstream."""
        self.attempt.error = message
        if kind in FAILURE_KINDS and self.breaker.failure(message):
            self.changed()
        return matches(self.rules, None, kind) and self._may_move_on()

    def answered(self, status: int) -> bool:
        """The upstream answered with ``status``; True: close it and fall back instead."""
        attempt = self.attempt
        attempt.status = status
        if status < 400:
            if self.breaker.state != "healthy":
                self.breaker.success()
                self.changed()
            else:
                self.breaker.success()
            attempt.served = True
            return False
        failing = status == 429 or status >= 500 or status in OUT_STATUSES
        if failing:
            attempt.error = f"HTTP {status}"
            if self.breaker.failure(attempt.error, status):
                self.changed()
        moves = (matches(self.rules, status, None) or status in OUT_STATUSES) and self._may_move_on()
        attempt.served = not moves
        return moves
