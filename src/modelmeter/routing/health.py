"""Each upstream's health: for the API (the model card) and for /metrics.

Read from the breakers in memory (per process; shared through Redis when configured).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from modelmeter.routing.pool import Router

STATES = ("healthy", "cooling", "probing", "out")


class UpstreamCollector(Collector):
    """``modelmeter_upstream_state{deployment,upstream,state}`` (1 for the current state),
    ``modelmeter_upstream_in_flight`` and ``modelmeter_upstream_cooldown_until_seconds``."""

    def __init__(self, router: Router) -> None:
        self._router = router

    def collect(self) -> Iterable[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "modelmeter_upstream_state",
            "1 for the upstream's current state",
            labels=["deployment", "upstream", "state"],
        )
        flight = GaugeMetricFamily(
            "modelmeter_upstream_in_flight", "Calls in flight to the upstream", labels=["deployment", "upstream"]
        )
        until = GaugeMetricFamily(
            "modelmeter_upstream_cooldown_until_seconds",
            "When the upstream's cooldown ends (Unix time; 0 when not cooling)",
            labels=["deployment", "upstream"],
        )
        for name, pool in list(self._router.pools.items()):
            for h in pool.health():
                for s in STATES:
                    state.add_metric([name, h["name"], s], 1.0 if h["state"] == s else 0.0)
                flight.add_metric([name, h["name"]], h["in_flight"])
                until.add_metric([name, h["name"]], h["until"] or 0.0)
        yield state
        yield flight
        yield until
