"""Which values of a high-cardinality dimension (API key, end user, tag, session) keep a row of
their own in an hour's rollup: the writer's in-memory view of each hour's top N by requests and top
N by spend (the union: at most 2 × TOP_N rows). By requests alone, a user with a few long-context
calls (the one people ask about: "who spends the money?") fell into "others".

Every request of an hour is counted exactly once in that hour's table: in its value's row if the
value is listed when its batch is written, else in the hour's "others" row (a batch adds to
"others" its total less what it adds to rows). A value that drops out of both lists has its whole
stored row folded into "others" (read and added in the same transaction). So the rows plus
"others" always add up to the hour's totals exactly, whatever the lists hold (several writers,
restarts and rolled-back batches included). Lists reloaded from the table (restart, rolled-back
batch) take the stored rows' top N by requests and top N by spend, and fold the rest: with several
writers an hour holds at most 2 × TOP_N rows per writer.

Each list is a heavy-hitters list: each process counts every value's requests and spend in the hour
(requests in a ``Counter``, updated in C, spend in a dict: this is the hot path), forgetting the least busy past
``TRACK_CAP``; when an unlisted value counts more than the smallest member of a list, they swap. A
promoted value's row starts with the batch that promoted it: its earlier requests of the hour stay
in "others". So a row is never more than the value's true figures, and it is exact for its hour when
the value was listed from its first request of the hour on (the first values of each hour, and
any value that was busy or costly from the start)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Values per (deployment, dimension, hour) in each list (by requests, by spend), beside "others".
# The same N for both: a breakdown shows 50 rows a page either way, sorted by spend or requests.
TOP_N = 50
# A listed row's latency histogram (its p95) is written at most this often (merging JSON
# histograms on every batch was the writer's largest cost); sums are written with every batch.
FLUSH_S = 60.0
TRACK_CAP = 20_000  # values whose requests a process counts per (deployment, dimension, hour)
N_SUMS = 6  # requests, succeeded, prompt, completion, total tokens, spend (pico-USD)
BINS = 6

# A row's latency histogram has coarser bins than the rollups' (five of theirs, ratio 1.01**5 ~ 1.051):
# a week of a busy value is 168 histograms to read, and it reads ~5x fewer entries; p95 is the
# geometric middle of its bin, within 2.6% of the exact value.
COARSE = 5


def coarse_bin(fine_bin: int) -> int:
    return fine_bin // COARSE


def coarse_value(index: int, floor_ms: float = 0.01, ratio: float = 1.01) -> float:
    """The geometric middle of a coarse bin (fine bins COARSE*index .. COARSE*index+COARSE-1;
    fine bin k >= 1 covers [floor * ratio**(k-1), floor * ratio**k))."""
    if index <= 0:
        return floor_ms * ratio ** (COARSE / 2 - 1) if COARSE > 1 else floor_ms
    return floor_ms * ratio ** (COARSE * index - 1 + COARSE / 2)


# A listed value's part of a batch: the six sums, then its latency histogram {bin: count}.
Acc = list[Any]


def new_acc() -> Acc:
    return [0, 0, 0, 0, 0, 0, {}]


@dataclass
class HourList:
    """One (deployment, dimension, hour) as this process knows it: the listed values (each with
    what the current batch adds to its row) and every value's requests counted so far."""

    listed: dict[str, Acc]
    counts: Counter[str] = field(default_factory=Counter)  # requests
    spend: dict[str, int] = field(default_factory=dict)  # pico-dollars (a dict: no __missing__ call)
    by_requests: set[str] = field(default_factory=set)  # the two lists; listed = their union
    by_spend: set[str] = field(default_factory=set)
    bins: dict[str, dict[str, int]] = field(default_factory=dict)  # histograms not yet written
    surplus: list[str] = field(default_factory=list)  # loaded rows in neither list: to be folded


def rebalance(hour: HourList, values: list[str], spends: list[int] | None = None, top_n: int = TOP_N) -> list[str]:
    """Count a batch's values (one per record) and their spend (pico-dollars, one per record), and
    update both lists; returns the values demoted from both (their stored rows are to be folded
    into "others")."""
    hour.counts.update(values)
    seen = set(values)
    left = _rank(hour.counts, hour.by_requests, seen, top_n, hour.listed)
    if spends is not None:
        spend = hour.spend
        get = spend.get
        for value, pusd in zip(values, spends, strict=True):
            if pusd:
                spend[value] = get(value, 0) + pusd
        left += _rank(spend, hour.by_spend, {v for v in seen if v in spend}, top_n, hour.listed)
    if hour.surplus:
        left += hour.surplus
        hour.surplus = []
    demoted = [v for v in dict.fromkeys(left) if v not in hour.by_requests and v not in hour.by_spend]
    for value in demoted:
        del hour.listed[value]
        hour.bins.pop(value, None)
    if len(hour.counts) > TRACK_CAP:
        # Bounded memory: the rarest values are forgotten (listed ones are kept).
        hour.counts = _trimmed(hour.counts, hour.listed)
        hour.spend = dict(_trimmed(Counter(hour.spend), hour.listed))
    return demoted


def _rank(
    counter: Mapping[str, int], members: set[str], seen: set[str], top_n: int, listed: dict[str, Acc]
) -> list[str]:
    """One list's turn: values of the batch that count more than the list's smallest member take
    its place (new members get a row in ``listed``); returns the members that left."""
    if len(members) >= top_n:  # only values above the smallest member can come in
        floor = min(counter[v] for v in members)
        fresh = [v for v in seen if v not in members and counter[v] > floor]
    else:
        fresh = [v for v in seen if v not in members]
    left: list[str] = []
    if fresh:
        fresh.sort(key=lambda v: (-counter[v], v))
        smallest: tuple[int, str] | None = None
        for value in fresh:
            if len(members) >= top_n:
                if smallest is None:
                    smallest = min((counter[v], v) for v in members)
                if counter[value] <= smallest[0]:
                    break  # sorted: none after this one counts more either
                members.discard(smallest[1])
                left.append(smallest[1])
                smallest = None
            members.add(value)
            if value not in listed:
                listed[value] = new_acc()
    return left


def _trimmed(counter: Counter[str], listed: dict[str, Acc]) -> Counter[str]:
    keep = dict(counter.most_common(TRACK_CAP // 2))
    for value in listed:
        keep.setdefault(value, counter[value])
    return Counter(keep)


def take_rows(hour: HourList) -> dict[str, Acc]:
    """The listed values' parts of the batch (those with requests), reset for the next batch;
    their histograms join the ones waiting to be written."""
    rows = {}
    for value, acc in hour.listed.items():
        if acc[0]:
            rows[value] = acc
            hour.listed[value] = new_acc()
            waiting = hour.bins.get(value)
            if waiting is None:
                hour.bins[value] = acc[BINS]
            else:
                for k, n in acc[BINS].items():
                    waiting[k] = waiting.get(k, 0) + n
    return rows


def take_bins(hour: HourList) -> dict[str, dict[str, int]]:
    """The histograms waiting to be written, handed over."""
    out, hour.bins = hour.bins, {}
    return out
