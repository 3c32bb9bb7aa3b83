"""The circuit breaker of one upstream: healthy, cooling down, half-open (one probe), or out.

``cooldown_after`` failures within ``cooldown_window`` seconds take it out for ``cooldown``
seconds; then one call goes to it (the probe) while the others go elsewhere: a success makes it
healthy again, a failure cools it down again. 401/402/403 (a bad key, an exhausted budget, a
refusal) take it out until an operator resets it: retrying would fail the same way. The clock is
injected so unit tests need not sleep.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

HEALTHY, COOLING, OUT = "healthy", "cooling", "out"
OUT_STATUSES = (401, 402, 403)


@dataclass(slots=True)
class Breaker:
    failures_allowed: int = 3
    window: float = 60.0
    cooldown: float = 30.0
    clock: Callable[[], float] = time.time  # wall clock: shared with other processes through Redis
    state: str = HEALTHY
    until: float = 0.0  # COOLING: the end of the cooldown (wall clock)
    probing: bool = False  # COOLING, past ``until``: the probe is in flight
    last_error: str | None = None
    last_error_at: float | None = None
    in_flight: int = 0
    _failures: deque[float] = field(default_factory=deque)

    def available(self) -> bool:
        """May a call go to it now? (Read-only: ``claim`` takes the probe's place.)"""
        if self.state == HEALTHY:
            return True
        return self.state == COOLING and not self.probing and self.clock() >= self.until

    def claim(self) -> bool:
        """A call goes to it: True if that call is the half-open probe."""
        self.in_flight += 1
        if self.state == COOLING:
            self.probing = True
            return True
        return False

    def release(self, probe: bool) -> None:
        self.in_flight = max(self.in_flight - 1, 0)
        if probe:
            self.probing = False  # the probe ended without a verdict (cancelled): let another probe

    def success(self) -> None:
        self.state = HEALTHY
        self.probing = False
        self._failures.clear()

    def failure(self, error: str, status: int | None = None) -> bool:
        """Note a failure; True when it took the upstream out (cooling or out)."""
        now = self.clock()
        self.last_error, self.last_error_at = error, now
        if status in OUT_STATUSES:
            self.state, self.probing = OUT, False
            return True
        if self.state == COOLING:  # the probe failed: cool down again
            self.until, self.probing = now + self.cooldown, False
            return True
        if self.state == OUT:
            return False
        failures = self._failures
        failures.append(now)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(failures) >= self.failures_allowed:
            failures.clear()
            self.state, self.until = COOLING, now + self.cooldown
            return True
        return False

    def reset(self) -> None:
        """An operator's reset (or another process's): healthy, its failures forgotten."""
        self.state, self.until, self.probing = HEALTHY, 0.0, False
        self._failures.clear()

    def adopt(self, state: str, until: float, error: str | None) -> None:
        """State shared by another process (routing/shared.py)."""
        if state == HEALTHY:
            if self.state != HEALTHY:
                self.reset()
            return
        if self.state == state and self.until == until:
            return
        self.state, self.until, self.probing = state, until, False
        if error:
            self.last_error = error

    def shown(self) -> str:
        """healthy / cooling / probing (cooled down, awaiting or running its probe) / out."""
        if self.state == COOLING and self.clock() >= self.until:
            return "probing"
        return self.state
