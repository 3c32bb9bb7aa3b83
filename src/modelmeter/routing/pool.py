"""The upstreams of each routed deployment, their breakers, and the choice of the next one.

Within the best priority that has an available upstream (healthy, or due for its half-open probe,
and below its ``max_concurrency``): a sticky key (prompt-cache key or session id) picks by weighted
rendezvous hashing, so one conversation keeps one upstream's cache warm and only moves when that
upstream goes away; otherwise weighted random, or the fewest calls in flight (``least_busy``).
All in memory, on the event loop: no I/O, no locks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from modelmeter.routing.breaker import COOLING, Breaker
from modelmeter.routing.upstream import Upstream

if TYPE_CHECKING:
    from modelmeter.config import Deployment

_TWO64 = float(2**64)


class Pool:
    def __init__(self, dep: Deployment, clock: Callable[[], float] | None = None, rng: random.Random | None = None):
        self.dep = dep
        self.upstreams: tuple[Upstream, ...] = dep.upstreams
        kw: dict[str, Any] = {"clock": clock} if clock is not None else {}
        self.breakers = [Breaker(dep.cooldown_after, dep.cooldown_window, dep.cooldown, **kw) for _ in dep.upstreams]
        self._random = (rng or random.Random()).random
        self.least_busy = dep.routing == "least_busy"
        # priority levels, best first: indexes into upstreams (which are sorted by priority)
        levels: dict[int, list[int]] = {}
        for i, u in enumerate(dep.upstreams):
            levels.setdefault(u.priority, []).append(i)
        self.levels = [levels[p] for p in sorted(levels)]

    def index_of(self, label: str | None) -> int | None:
        """The index of the upstream labelled ``label`` (None: no such upstream)."""
        return next((i for i, up in enumerate(self.upstreams) if up.label == label), None)

    def usable(self, i: int) -> bool:
        limit = self.upstreams[i].max_concurrency
        b = self.breakers[i]
        return b.available() and (limit is None or b.in_flight < limit)

    def pick(self, tried: set[int] | frozenset[int] = frozenset(), key: str | None = None) -> int | None:
        """The index of the upstream for the next attempt, or None if none is left."""
        for level in self.levels:
            found = [i for i in level if i not in tried and self.usable(i)]
            if len(found) == 1:
                return found[0]
            if found:
                if key is not None:
                    return self._sticky(found, key)
                if self.least_busy:
                    low = min(self.breakers[i].in_flight for i in found)
                    found = [i for i in found if self.breakers[i].in_flight == low]
                    if len(found) == 1:
                        return found[0]
                return self._weighted(found)
        return None

    def _weighted(self, found: list[int]) -> int:
        ups = self.upstreams
        total = sum(ups[i].weight for i in found)
        x = self._random() * total
        for i in found:
            x -= ups[i].weight
            if x < 0:
                return i
        return found[-1]

    def _sticky(self, found: list[int], key: str) -> int:
        """Weighted rendezvous hashing: the highest weight / -ln(u) of hash(key, upstream)."""
        best, best_score = found[0], -1.0
        for i in found:
            up = self.upstreams[i]
            h = int.from_bytes(blake2b(f"{key}\x00{up.label}".encode(), digest_size=8).digest(), "big")
            u = (h + 1) / (_TWO64 + 1)  # in (0, 1)
            score = up.weight / -math.log(u)
            if score > best_score:
                best, best_score = i, score
        return best

    def retry_after(self) -> int | None:
        """Seconds until the first cooling upstream may be probed (for a 503's Retry-After)."""
        ends = [b.until for b in self.breakers if b.state == COOLING]
        if not ends:
            return None
        return max(math.ceil(min(ends) - self.breakers[0].clock()), 1)

    def health(self) -> list[dict[str, Any]]:
        out = []
        for up, b in zip(self.upstreams, self.breakers, strict=True):
            out.append(
                {
                    "name": up.label,
                    "priority": up.priority,
                    "weight": up.weight,
                    "state": b.shown(),
                    "until": b.until if b.state == COOLING else None,
                    "in_flight": b.in_flight,
                    "max_concurrency": up.max_concurrency,
                    "last_error": b.last_error,
                    "last_error_at": b.last_error_at,
                }
            )
        return out


class Router:
    """The pools of the routed deployments, made on first use; kept while a definition's upstreams
    and routing settings stay the same (the registry reloads run-time deployments every second)."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.pools: dict[str, Pool] = {}
        self.clock = clock
        self.on_change: Callable[[str, Pool, int], None] | None = None  # breaker changes (shared.py)

    def pool(self, dep: Deployment) -> Pool:
        pool = self.pools.get(dep.name)
        if pool is not None and pool.dep is dep:
            return pool
        if pool is None or not _same_routing(pool.dep, dep):
            pool = Pool(dep, self.clock)
            self.pools[dep.name] = pool
        else:
            pool.dep = dep
        return pool

    def find(self, name: str) -> Pool | None:
        return self.pools.get(name)

    def changed(self, pool: Pool, i: int) -> None:
        if self.on_change is not None:
            self.on_change(pool.dep.name, pool, i)


def _same_routing(a: Deployment, b: Deployment) -> bool:
    return (a.upstreams, a.routing, a.cooldown_after, a.cooldown_window, a.cooldown) == (
        b.upstreams,
        b.routing,
        b.cooldown_after,
        b.cooldown_window,
        b.cooldown,
    )
