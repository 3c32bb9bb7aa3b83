"""Which values of a high-cardinality dimension (API key, end user, tag, session) keep a row of
their own in an hour's rollup: the writer's in-memory view of each hour's top N.

Every request of an hour is counted exactly once in that hour's table: in its value's row if the
value is listed, else in the hour's "others" row. Only moves change which row holds what, and a move
takes from one row exactly what it adds to another, so the rows plus "others" always add up to the
hour's totals, whatever the list holds (several writers, restarts, rolled-back batches included).

The list is a heavy-hitters list: a value not listed is promoted when what this process has seen of
it this hour (``seen``) ranks above the smallest listed value (by spend, then requests); that
smallest one is folded into "others" (its whole row) and the newcomer's ``seen`` sums are moved out
of "others" into its row. With one writer process that remembered the value since its first request
of the hour (a process remembers up to ``TRACK_CAP`` values per hour), a listed row is exact for
that hour. A row is never more than the value's true figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TOP_N = 50  # listed values per (deployment, dimension, hour), beside "others"
TRACK_CAP = 20_000  # values a process remembers per (deployment, dimension, hour)
N_SUMS = 6  # requests, succeeded, prompt, completion, total tokens, spend (pico-USD)
SPEND, REQUESTS = 5, 0

# An accumulator: the six sums, then the latency histogram {bin: count}.
Acc = list[Any]


def new_acc() -> Acc:
    return [0, 0, 0, 0, 0, 0, {}]


def add_into(into: Acc, more: Acc, sign: int = 1) -> None:
    for i in range(N_SUMS):
        into[i] += sign * more[i]
    bins = into[N_SUMS]
    for k, n in more[N_SUMS].items():
        bins[k] = bins.get(k, 0) + sign * n


@dataclass
class HourList:
    """One (deployment, dimension, hour): the values listed in the database (as far as this process
    knows), what this process has added for each value it remembers, and ranks of rows it loaded."""

    listed: set[str]
    base: dict[str, tuple[int, int]] = field(default_factory=dict)  # (spend, requests) read from the db
    seen: dict[str, Acc] = field(default_factory=dict)

    def rank(self, value: str) -> tuple[int, int]:
        own = self.seen.get(value)
        spend, requests = self.base.get(value, (0, 0))
        if own is not None:
            spend, requests = spend + own[SPEND], requests + own[REQUESTS]
        return spend, requests


@dataclass
class Plan:
    """What a batch does to one hour's table: add to listed rows, add to (or take from) "others",
    and fold demoted rows into "others" (their whole stored row)."""

    rows: dict[str, Acc] = field(default_factory=dict)
    others: Acc = field(default_factory=new_acc)
    demoted: list[str] = field(default_factory=list)


def plan_batch(hour: HourList, groups: dict[str, Acc], top_n: int = TOP_N, cap: int = TRACK_CAP) -> Plan:
    """Apply a batch's per-value sums for one hour to ``hour`` and say what to write."""
    plan = Plan()
    candidates: list[str] = []
    for value, acc in groups.items():
        own = hour.seen.get(value)
        if own is None and len(hour.seen) < cap:
            own = hour.seen[value] = new_acc()
        if own is not None:
            add_into(own, acc)
        if value in hour.listed:
            plan.rows[value] = acc
        else:
            add_into(plan.others, acc)
            if own is not None:
                candidates.append(value)
    if not candidates:
        return plan
    candidates.sort(key=hour.rank, reverse=True)
    smallest: tuple[tuple[int, int], str] | None = None
    for value in candidates:
        rank = hour.rank(value)
        if len(hour.listed) >= top_n:
            if smallest is None:
                smallest = min((hour.rank(v), v) for v in hour.listed)
            if rank <= smallest[0]:
                break  # candidates are sorted: none after this one ranks higher either
            _demote(hour, plan, smallest[1])
            smallest = None
        _promote(hour, plan, value)
    return plan


def _promote(hour: HourList, plan: Plan, value: str) -> None:
    # Everything this process added for the value is in "others" (it was not listed): move it.
    own = hour.seen[value]
    add_into(plan.others, own, -1)
    row = plan.rows.get(value)
    moved = new_acc()
    add_into(moved, own)
    if row is not None:  # (promoted, demoted and promoted again within one batch)
        add_into(moved, row)
    plan.rows[value] = moved
    hour.listed.add(value)


def _demote(hour: HourList, plan: Plan, value: str) -> None:
    # The stored row goes to "others" in the database; what this batch had for it goes with it.
    hour.listed.discard(value)
    hour.base.pop(value, None)
    row = plan.rows.pop(value, None)
    if row is not None:
        add_into(plan.others, row)
    plan.demoted.append(value)
