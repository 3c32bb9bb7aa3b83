"""The top-N rows' latency histograms summed per UTC day (``rollup_top_day``), so a breakdown's p95s
read one row per value and day, not one per value and hour: a 7-day window of 50 users was about
8,400 hourly histograms for PostgreSQL to serialise and for Python to parse and add up.

A day row always equals the sum of the histograms its day's hourly rows (``rollup_top_hour``,
``other = 0``) hold: every change to those is mirrored here in the same transaction, bins written
to an hour row added, a demoted hour row's bins taken away (``mm_bins_net``: a sum that drops the
bins that come to zero; NULL when none is left). Any number of writers keep it so (the day row is
locked like the hour rows), and a rolled-back batch rolls its mirror back with it. A reader may
therefore take a whole day's row in place of its 24 hours (``rollup_reads.segments`` with
``days``, as the day rollups are read); retention removes both
tables a whole day at a time. The day rows are JSON text on both databases (not jsonb on PostgreSQL,
where turning jsonb into text took ~8 us a histogram).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelmeter.storage import histogram
from modelmeter.storage.database import Database
from modelmeter.storage.rollups import DAY_US

TABLE = "rollup_top_day"

Key = tuple[str, str, int, str]  # deployment, dim, day_us, value


def day_of(bucket_us: int) -> int:
    return bucket_us - bucket_us % DAY_US


class Deltas:
    """A batch's changes to the day rows, summed per (deployment, dim, day, value) in memory: one
    upsert per day row however many of its hours the batch touched."""

    def __init__(self) -> None:
        self.by_key: dict[Key, histogram.Bins] = {}

    def add(self, dep: str, dim: str, bucket_us: int, value: str, bins: Mapping[str, int], sign: int = 1) -> None:
        got = self.by_key.setdefault((dep, dim, day_of(bucket_us), value), {})
        for k, n in bins.items():
            got[k] = got.get(k, 0) + sign * n

    def remove(self, dep: str, dim: str, bucket_us: int, value: str, stored: Any) -> None:
        """An hour row's stored histogram (text or parsed jsonb; None: it had none) taken away."""
        if stored is not None:
            self.add(dep, dim, bucket_us, value, histogram.decode(stored), -1)

    def rows(self) -> list[dict[str, Any]]:
        """Upsert parameters in key order (two writers lock the day rows in the same order)."""
        out = []
        for (dep, dim, day, value), bins in sorted(self.by_key.items()):
            net = {k: n for k, n in bins.items() if n}
            if net:
                out.append(
                    {"deployment": dep, "dim": dim, "day_us": day, "value": value, "bins": orjson.dumps(net).decode()}
                )
        return out


def write(db: Database, tx: Any, deltas: Deltas) -> None:
    rows = deltas.rows()
    if rows:
        db.executemany(tx, _UPSERT, rows)


# A new row only ever starts from added bins: bins are taken away only from hours already here.
_UPSERT = (
    f"INSERT INTO {TABLE} (deployment, dim, day_us, value, latency_bins) "
    "VALUES (:deployment, :dim, :day_us, :value, :bins) "
    "ON CONFLICT (deployment, dim, day_us, value) DO UPDATE SET "
    f"latency_bins = mm_bins_net({TABLE}.latency_bins, excluded.latency_bins)"
)
