"""Which values of a high-cardinality dimension (API key, end user, tag, session) keep a row of
their own in an hour's rollup: the writer's in-memory view of each hour's top N by requests.

Every request of an hour is counted exactly once in that hour's table: in its value's row if the
value is listed when its batch is written, else in the hour's "others" row (a batch adds to
"others" its total less what it adds to rows). A value that drops out of the list has its whole
stored row folded into "others" (read and added in the same transaction). So the rows plus
"others" always add up to the hour's totals exactly, whatever the lists hold (several writers,
restarts and rolled-back batches included).

The list is a heavy-hitters list: each process counts every value's requests in the hour (a
``Counter``, updated in C: this is the hot path), forgetting the least frequent past ``TRACK_CAP``;
when an unlisted value counts more requests than the smallest listed one, they swap. A promoted
value's row starts with the batch that promoted it: its earlier requests of the hour stay in
"others". So a row is never more than the value's true figures, and it is exact for its hour when
the value was listed from its first request of the hour on (the first values of each hour, and
any value that was busy from the start)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TOP_N = 50  # listed values per (deployment, dimension, hour), beside "others"
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
    counts: Counter[str] = field(default_factory=Counter)
    bins: dict[str, dict[str, int]] = field(default_factory=dict)  # histograms not yet written


def rebalance(hour: HourList, values: list[str], top_n: int = TOP_N) -> list[str]:
    """Count a batch's values (one per record) and update the list; returns the values demoted
    (their stored rows are to be folded into "others")."""
    counts = hour.counts
    counts.update(values)
    listed = hour.listed
    if len(listed) >= top_n:  # only values above the smallest listed one can come in
        floor = min(counts[v] for v in listed)
        fresh = [v for v in set(values) if v not in listed and counts[v] > floor]
    else:
        fresh = [v for v in set(values) if v not in listed]
    demoted: list[str] = []
    if fresh:
        fresh.sort(key=lambda v: (-counts[v], v))
        smallest: tuple[int, str] | None = None
        for value in fresh:
            if len(listed) >= top_n:
                if smallest is None:
                    smallest = min((counts[v], v) for v in listed)
                if counts[value] <= smallest[0]:
                    break  # sorted: none after this one counts more either
                del listed[smallest[1]]
                hour.bins.pop(smallest[1], None)
                demoted.append(smallest[1])
                smallest = None
            listed[value] = new_acc()
    if len(counts) > TRACK_CAP:
        # Bounded memory: the rarest values are forgotten (listed ones are kept).
        keep = dict(counts.most_common(TRACK_CAP // 2))
        for value in listed:
            keep.setdefault(value, counts[value])
        hour.counts = Counter(keep)
    return demoted


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
