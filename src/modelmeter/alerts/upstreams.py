"""The "upstream_cooling" alert kind: how many upstreams of routed deployments are cooling down or
out right now (a 402 exhausted budget, a replica that keeps failing), from the breakers in memory.

Each process measures its own breakers, which agree across processes when ``[server] redis`` shares
them; without Redis a worker that never called the upstream sees it healthy. The window does not
apply: the value is the state now, so ``for`` is what holds a rule back from a short cooldown.
"""

from __future__ import annotations

from collections.abc import Callable

from modelmeter.alerts.measure import Measurement, bounds, measure
from modelmeter.alerts.rules import AlertRule
from modelmeter.routing.pool import Router
from modelmeter.storage.database import Database

KIND = "upstream_cooling"


def not_healthy(router: Router, deployment: str | None) -> int:
    pools = list(router.pools.items())  # read from the alert thread: a copy of the dict's items
    return sum(
        1
        for name, pool in pools
        if deployment is None or name == deployment
        for b in pool.breakers
        if b.state != "healthy"
    )


def with_upstreams(router: Router) -> Callable[[Database, AlertRule, int], Measurement]:
    """``measure``, with this kind answered from ``router``."""

    def measure_all(db: Database, rule: AlertRule, now_us: int) -> Measurement:
        if rule.kind != KIND:
            return measure(db, rule, now_us)
        start, end = bounds(rule.window_s, now_us)
        target = rule.target if rule.scope == "deployment" else None
        return Measurement(float(not_healthy(router, target)), start, end)

    return measure_all
