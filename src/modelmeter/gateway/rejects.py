"""A per-client-IP budget of calls the gateway rejects itself (bad keys, bad input, loops).

A token bucket per address: ``per_minute`` rejected calls a minute, bursts up to that many. Beyond
it a rejected call is answered 429 with ``Retry-After`` and recorded cheaply: no bodies and no
metadata (tags kept, capped), so an anonymous client cannot fill the disk with rejected calls,
while every request that names a deployment still has its record.
"""

from __future__ import annotations

import math
import time

from modelmeter.gateway.errors import APIError
from modelmeter.metering.record import CallRecord

MAX_ADDRESSES = 10_000  # buckets kept; full (idle) ones are dropped first


class RejectBudget:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # ip -> (tokens, at)

    def take(self, ip: str | None, now: float | None = None) -> float | None:
        """Spend one rejection of ``ip``: None when within budget, else seconds until the next."""
        if self.per_minute <= 0 or ip is None:
            return None
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(ip, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * self._rate)
        if tokens < 1.0:
            self._buckets[ip] = (tokens, now)
            return (1.0 - tokens) / self._rate
        if len(self._buckets) >= MAX_ADDRESSES and ip not in self._buckets:
            self._prune(now)
        self._buckets[ip] = (tokens - 1.0, now)
        return None

    def _prune(self, now: float) -> None:
        """Forget addresses whose bucket has refilled (they are as if new), else the oldest half."""
        full = [ip for ip, (tokens, at) in self._buckets.items() if tokens + (now - at) * self._rate >= self.per_minute]
        for ip in full or sorted(self._buckets, key=lambda i: self._buckets[i][1])[: MAX_ADDRESSES // 2]:
            del self._buckets[ip]


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))


REJECTED_BODY_BYTES = 4096  # bodies stored of a call the gateway refused itself (marked truncated)


def settle_rejection(budget: RejectBudget, exc: APIError, rec: CallRecord) -> APIError:
    """A call refused before any upstream: its bodies are stored capped small; a 4xx spends the
    client's budget, and beyond it the answer is a 429 whose record keeps no bodies or metadata."""
    rec.max_stored_body_bytes = min(rec.max_stored_body_bytes, REJECTED_BODY_BYTES)
    if exc.status >= 500:
        return exc  # the gateway's own state (a model starting, a loop), not the client's doing
    wait = budget.take(rec.client_ip)
    if wait is None:
        return exc
    rec.request_body = None
    rec.metadata = None
    return APIError(
        429,
        f"Too many rejected requests from your address (more than "
        f"{budget.per_minute} a minute); this one: {exc.message[:200]}",
        "rate_limit_error",
        exc.param,
        code="too_many_rejected_requests",
        retry_after=retry_after(wait),
    )
