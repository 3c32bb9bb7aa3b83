"""The state machine of one rule: ok → pending → firing → (resolved) ok.

A breach starts "pending"; only a breach that lasts the rule's ``for`` duration fires, so one spike
pages nobody. Pure: it gets the time, so tests drive it with a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

State = Literal["ok", "pending", "firing"]
# What a change is called in the history; only "firing" and "resolved" are notified.
Change = Literal["pending", "firing", "resolved", "cleared"]
NOTIFIED: frozenset[str] = frozenset({"firing", "resolved"})


@dataclass(frozen=True)
class RuleState:
    state: State = "ok"
    since_us: int = 0  # when this state began (pending: when the breach began)
    value: float | None = None
    last_fired_us: int | None = None


@dataclass(frozen=True)
class Transition:
    change: Change
    started_us: int  # when the breach began (for firing and resolved alike)
    at_us: int

    @property
    def notify(self) -> bool:
        return self.change in NOTIFIED


def step(
    prev: RuleState, breached: bool, value: float | None, now_us: int, for_us: int
) -> tuple[RuleState, Transition | None]:
    """The next state after one evaluation, and the change it makes (None: no change)."""
    if prev.state == "ok":
        if not breached:
            return replace(prev, value=value), None
        if for_us <= 0:
            return RuleState("firing", now_us, value, now_us), Transition("firing", now_us, now_us)
        return RuleState("pending", now_us, value, prev.last_fired_us), Transition("pending", now_us, now_us)
    if prev.state == "pending":
        if not breached:
            return RuleState("ok", now_us, value, prev.last_fired_us), Transition("cleared", prev.since_us, now_us)
        if now_us - prev.since_us >= for_us:
            return RuleState("firing", prev.since_us, value, now_us), Transition("firing", prev.since_us, now_us)
        return replace(prev, value=value), None
    if breached:
        return replace(prev, value=value), None
    return RuleState("ok", now_us, value, prev.last_fired_us), Transition("resolved", prev.since_us, now_us)
