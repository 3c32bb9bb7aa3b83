"""0021_top_days, frozen: the top-N rows' latency histograms summed per UTC day in
``rollup_top_day`` (``storage.top_days``), filled from the hourly rows already stored, and
``mm_bins_net`` on PostgreSQL (SQLite has it from Python on each connection).

Never edit this once shipped: it holds its own SQL and never calls today's application code.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

import orjson

from modelmeter.storage.database import Database

_DAY_US_0021 = 86_400_000_000


def statements_0021() -> tuple[str, ...]:
    return (
        """CREATE TABLE rollup_top_day (
            deployment TEXT NOT NULL,
            dim TEXT NOT NULL,
            day_us BIGINT NOT NULL,
            value TEXT NOT NULL,
            latency_bins TEXT,
            PRIMARY KEY (deployment, dim, day_us, value)
        )/*WITHOUT_ROWID*/""",
    )


# A sum of two histograms (JSON text) where either may take bins away: bins that come to zero
# are dropped, and a histogram with none left is NULL. The day rows are text, not jsonb, on
# PostgreSQL too: reading jsonb as text costs ~8 us a histogram (most of a breakdown's first call).
POSTGRES_BINS_NET_0021 = """CREATE OR REPLACE FUNCTION mm_bins_net(a text, b text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CAST(jsonb_object_agg(k, n) AS text) FROM (
    SELECT k, SUM(v::bigint) AS n FROM (
      SELECT key AS k, value AS v FROM jsonb_each_text(CAST(COALESCE(a, '{}') AS jsonb))
      UNION ALL SELECT key, value FROM jsonb_each_text(CAST(COALESCE(b, '{}') AS jsonb))) AS both_bins
    GROUP BY k HAVING SUM(v::bigint) <> 0) AS summed
$$"""


def backfill_0021(db: Database, tx: Any) -> None:
    """Each day's hourly histograms of a value summed into its day row, a deployment and
    dimension at a time (sorted, so one group is in memory at once)."""
    pairs = tx.execute("SELECT DISTINCT deployment, dim FROM rollup_top_hour").fetchall()
    insert = (
        "INSERT INTO rollup_top_day (deployment, dim, day_us, value, latency_bins) "
        "VALUES (:deployment, :dim, :day_us, :value, :bins)"
    )
    for dep, dim in pairs:
        rows = tx.execute(
            db.sql(
                "SELECT bucket_us, value, CAST(latency_bins AS TEXT) FROM rollup_top_hour "
                "WHERE deployment = :d AND dim = :m AND other = 0 AND latency_bins IS NOT NULL"
            ),
            {"d": dep, "m": dim},
        ).fetchall()
        keyed = sorted(((int(b) - int(b) % _DAY_US_0021, str(v), str(j)) for b, v, j in rows), key=lambda r: r[:2])
        out = []
        for (day, value), group in groupby(keyed, key=lambda r: r[:2]):
            summed: dict[str, int] = {}
            for *_, text in group:
                for k, n in orjson.loads(text).items():
                    summed[k] = summed.get(k, 0) + int(n)
            net = {k: n for k, n in summed.items() if n}
            if net:
                bins = orjson.dumps(net).decode()
                out.append({"deployment": dep, "dim": dim, "day_us": day, "value": value, "bins": bins})
        if out:
            db.executemany(tx, insert, out)
