"""The data steps of shipped migrations, frozen: each holds its own SQL and arithmetic, as the
schema was when it shipped, and imports nothing of today's application code (rollups, histograms,
request ids). Today's code may change its tables, columns or bins; a database upgraded from 0002
next year must still get exactly what these steps computed. Never edit them; add a new step.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from itertools import groupby
from typing import Any

import orjson

from modelmeter.storage.database import Database

# -- 0003_rollups: records stored before rollups existed, summed into minutes and hours ----------
_SUMS_0003 = (
    "requests",
    "succeeded",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "spend_pusd",
    "latency_sum",
    "ttft_sum",
    "ttft_count",
)
_ADDED_0003 = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "spend_pusd")
_LOG_RATIO_0003 = math.log(1.01)  # latency bins of ratio 1.01 above 0.01 ms (bin 0 below)


def _bin_0003(latency_ms: float) -> int:
    if latency_ms <= 0.01:
        return 0
    return int(math.log(latency_ms / 0.01) / _LOG_RATIO_0003) + 1


def _buckets_0003(rows: list[dict[str, Any]], size_us: int) -> list[dict[str, Any]]:
    buckets: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        key = (r["deployment"], r["start_us"] - r["start_us"] % size_us)
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = {
                "deployment": key[0],
                "bucket_us": key[1],
                **dict.fromkeys(_SUMS_0003, 0),
                "latency_sum": 0.0,
                "ttft_sum": 0.0,
                "bins": Counter(),
            }
        b["requests"] += 1
        b["succeeded"] += r["status"] == "success"
        for col in _ADDED_0003:
            b[col] += r[col]
        b["latency_sum"] += r["latency_ms"]
        if r["ttft_ms"] is not None:
            b["ttft_sum"] += r["ttft_ms"]
            b["ttft_count"] += 1
        b["bins"][_bin_0003(r["latency_ms"])] += 1
    return [buckets[k] for k in sorted(buckets)]


def _coarsen_0003(minutes: list[dict[str, Any]], size_us: int) -> list[dict[str, Any]]:
    """Hours summed from the minutes (in this order, so float sums come out as they always did)."""
    buckets: dict[tuple[str, int], dict[str, Any]] = {}
    for m in minutes:
        key = (m["deployment"], m["bucket_us"] - m["bucket_us"] % size_us)
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = {
                "deployment": key[0],
                "bucket_us": key[1],
                **dict.fromkeys(_SUMS_0003, 0),
                "latency_sum": 0.0,
                "ttft_sum": 0.0,
                "bins": Counter(),
            }
        for col in _SUMS_0003:
            b[col] += m[col]
        b["bins"].update(m["bins"])
    return [buckets[k] for k in sorted(buckets)]


def backfill_rollups_0003(db: Database, tx: Any) -> None:
    """Records stored before rollups existed are added to them (in 0003's table layout), a page at
    a time."""
    cols = (
        "id",
        "deployment",
        "start_us",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "spend_pusd",
        "latency_ms",
        "ttft_ms",
    )
    names = ("deployment", "bucket_us", *_SUMS_0003)
    last = ""
    while True:
        page = tx.execute(
            db.sql(f"SELECT {', '.join(cols)} FROM records WHERE id > :last ORDER BY id LIMIT 5000"), {"last": last}
        ).fetchall()
        if not page:
            return
        minutes = _buckets_0003([dict(zip(cols, r, strict=True)) for r in page], 60_000_000)
        for name, buckets in (("minute", minutes), ("hour", _coarsen_0003(minutes, 3_600_000_000))):
            updates = ", ".join(f"{c} = rollup_{name}.{c} + excluded.{c}" for c in _SUMS_0003)
            db.executemany(
                tx,
                f"INSERT INTO rollup_{name} ({', '.join(names)}) VALUES "
                f"({', '.join(':' + c for c in names)}) "
                f"ON CONFLICT (deployment, bucket_us) DO UPDATE SET {updates}",
                buckets,
            )
            db.executemany(
                tx,
                f"INSERT INTO rollup_hist_{name} (deployment, bucket_us, bin, n) VALUES "
                "(:d, :b, :i, :n) ON CONFLICT (deployment, bucket_us, bin) "
                f"DO UPDATE SET n = rollup_hist_{name}.n + excluded.n",
                [
                    {"d": b["deployment"], "b": b["bucket_us"], "i": i, "n": n}
                    for b in buckets
                    for i, n in sorted(b["bins"].items())
                ],
            )
        last = page[-1][0]


# -- 0005_rollup_bins: each bucket's histogram rows folded into one JSON object in its row -------
POSTGRES_BINS_ADD_0005 = """CREATE OR REPLACE FUNCTION mm_bins_add(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE (
    SELECT jsonb_object_agg(k, n) FROM (
      SELECT k, SUM(v::bigint) AS n FROM (
        SELECT key AS k, value AS v FROM jsonb_each_text(a)
        UNION ALL SELECT key, value FROM jsonb_each_text(b)) AS both_bins
      GROUP BY k) AS summed) END
$$"""


def _encode_0005(bins: dict[int, int]) -> str:
    return orjson.dumps(bins, option=orjson.OPT_NON_STR_KEYS).decode()


def fold_histograms_0005(db: Database, tx: Any) -> None:
    for name in ("minute", "hour"):
        rows = tx.execute(
            f"SELECT deployment, bucket_us, bin, n FROM rollup_hist_{name} ORDER BY deployment, bucket_us, bin"
        ).fetchall()
        updates = [
            {"d": dep, "b": bucket, "bins": _encode_0005({int(i): int(n) for *_, i, n in group})}
            for (dep, bucket), group in groupby(rows, key=lambda r: (r[0], r[1]))
        ]
        db.executemany(
            tx,
            f"UPDATE rollup_{name} SET latency_bins = {db.json_param('bins')} WHERE deployment = :d AND bucket_us = :b",
            updates,
        )


# -- 0007_request_ids: the request ids of every quarter hour that is over, in one sorted copy ----
_SLOT_US_0007 = 900_000_000


def index_past_request_ids_0007(db: Database, tx: Any) -> None:
    now_us = int(time.time() * 1e6) - 2 * 60 * 1_000_000  # a slot is indexed 2 minutes after it ends
    end = now_us - now_us % _SLOT_US_0007
    tx.execute(
        db.sql(
            "INSERT INTO request_ids (slot_us, request_id, id) "
            f"SELECT start_us - start_us % {_SLOT_US_0007}, request_id, id FROM records "
            "WHERE start_us >= :a AND start_us < :b AND request_id IS NOT NULL "
            "ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING"
        ),
        {"a": 0, "b": end},
    )
    tx.execute(
        db.sql(
            "INSERT INTO server_settings (name, value) VALUES (:n, :v) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        ),
        {"n": "request_ids_until", "v": str(end)},
    )


# -- 0008_rollup_quarter: quarter hours summed from the minute rollups -----------------------------
def _decode_0008(value: Any) -> dict[str, int]:
    """A stored histogram: JSON text (SQLite) or already parsed (PostgreSQL's jsonb)."""
    if value is None:
        return {}
    return dict(orjson.loads(value)) if isinstance(value, str | bytes) else dict(value)


def fill_quarters_0008(db: Database, tx: Any) -> None:
    """5,000 minutes at a time; the upsert adds, so a quarter split across two pages still sums right."""
    cols = ("deployment", "bucket_us", *_SUMS_0003, "latency_bins")
    names = ("deployment", "bucket_us", *_SUMS_0003)
    updates = ", ".join(f"{c} = rollup_quarter.{c} + excluded.{c}" for c in _SUMS_0003)
    upsert = (
        f"INSERT INTO rollup_quarter ({', '.join(names)}, latency_bins) VALUES "
        f"({', '.join(':' + c for c in names)}, {db.json_param('latency_bins')}) "
        f"ON CONFLICT (deployment, bucket_us) DO UPDATE SET {updates}, "
        "latency_bins = mm_bins_add(rollup_quarter.latency_bins, excluded.latency_bins)"
    )
    after = ("", -1)
    while True:
        rows = tx.execute(
            db.sql(
                f"SELECT {', '.join(cols)} FROM rollup_minute WHERE deployment > :d OR "
                "(deployment = :d AND bucket_us > :b) ORDER BY deployment, bucket_us LIMIT 5000"
            ),
            {"d": after[0], "b": after[1]},
        ).fetchall()
        if not rows:
            return
        quarters: dict[tuple[str, int], dict[str, Any]] = {}
        for row in rows:
            minute = dict(zip(cols, row, strict=True))
            key = (minute["deployment"], minute["bucket_us"] - minute["bucket_us"] % _SLOT_US_0007)
            q = quarters.get(key)
            if q is None:
                q = quarters[key] = {
                    "deployment": key[0],
                    "bucket_us": key[1],
                    **dict.fromkeys(_SUMS_0003, 0),
                    "latency_sum": 0.0,
                    "ttft_sum": 0.0,
                    "bins": Counter(),
                }
            for col in _SUMS_0003:
                q[col] += minute[col]
            q["bins"].update({int(k): int(n) for k, n in _decode_0008(minute["latency_bins"]).items()})
        out = [quarters[k] for k in sorted(quarters)]
        for q in out:
            q["latency_bins"] = _encode_0005(q.pop("bins"))
        db.executemany(tx, upsert, out)
        after = (rows[-1][0], rows[-1][1])


# -- 0016_upstream_rollups: routed records summed per (deployment, upstream, minute / hour) -------
def fill_upstream_rollups_0016(db: Database, tx: Any) -> None:
    """In SQL, in one pass per resolution. Latency in whole microseconds rounded half up,
    trunc(ms * 1000 + 0.5) in double arithmetic; "" for calls no upstream answered."""
    us = "TRUNC(latency_ms * 1000 + 0.5)" if db.dialect == "postgresql" else "latency_ms * 1000 + 0.5"
    for name, size in (("minute", 60_000_000), ("hour", 3_600_000_000)):
        tx.execute(
            f"INSERT INTO rollup_upstream_{name} (deployment, upstream, bucket_us, requests, succeeded, rescued, "
            "latency_us, spend_pusd) "
            f"SELECT deployment, COALESCE(served_by, ''), start_us - start_us % {size}, COUNT(*), "
            "SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status = 'success' AND retries > 0 THEN 1 ELSE 0 END), "
            f"SUM(CAST({us} AS BIGINT)), SUM(spend_pusd) "
            "FROM records WHERE attempts IS NOT NULL GROUP BY 1, 2, 3"
        )


# -- 0017_topn_breakdowns: hourly top-N rows per API key, end user, tag and session, and "others" -----
_TOP_N_0017 = 50
_HOUR_US_0017 = 3_600_000_000
_SUMS_0017 = ("requests", "succeeded", "prompt_tokens", "completion_tokens", "total_tokens", "spend_pusd")


def _bin_0017(latency_ms: float) -> int:
    # Five of 0005's bins (ratio 1.01 from 0.01 ms) in one: ratio 1.01**5.
    return 0 if latency_ms <= 0.01 else (int(math.log(latency_ms / 0.01) / math.log(1.01)) + 1) // 5


def _values_0017(key: Any, metadata: Any, session: Any, tags: Any) -> list[tuple[str, str]]:
    user = ""
    if metadata and '"user"' in metadata:
        try:
            found = orjson.loads(metadata).get("user")
        except (orjson.JSONDecodeError, AttributeError):
            found = None
        user = found if isinstance(found, str) else ""
    out = [("key", key or ""), ("user", user), ("session", session or "")]
    parsed = orjson.loads(tags) if tags else []
    out += [("tag", str(t)) for t in dict.fromkeys(parsed)] if parsed else [("tag", "")]
    return out


def _flush_0017(db: Database, tx: Any, dep: str, bucket: int, hour: dict[tuple[str, str], list[Any]]) -> None:
    cols = ("deployment", "dim", "bucket_us", "other", "value", *_SUMS_0017)
    insert = (
        f"INSERT INTO rollup_top_hour ({', '.join(cols)}, latency_bins) VALUES "
        f"({', '.join(':' + c for c in cols)}, {db.json_param('latency_bins')})"
    )
    out: list[dict[str, Any]] = []
    for dim in ("key", "session", "tag", "user"):
        ranked = sorted(
            ((k[1], a) for k, a in hour.items() if k[0] == dim), key=lambda va: (-va[1][5], -va[1][0], va[0])
        )
        others: list[Any] = [0] * 6 + [Counter()]
        for i, (value, acc) in enumerate(ranked):
            if i < _TOP_N_0017:
                out.append({"value": value, "other": 0, "dim": dim, "acc": acc})
            else:
                for j in range(6):
                    others[j] += acc[j]
                others[6].update(acc[6])
        if others[0]:
            out.append({"value": "", "other": 1, "dim": dim, "acc": others})
    for o in out:
        acc = o.pop("acc")
        o.update(zip(_SUMS_0017, acc[:6], strict=True))
        o |= {"deployment": dep, "bucket_us": bucket, "latency_bins": _encode_0005(dict(acc[6]))}
    db.executemany(tx, insert, out)


def backfill_top_0017(db: Database, tx: Any) -> None:
    """The records stored before 0017, hour by hour per deployment (20,000 rows a page)."""
    cols = (
        "deployment, start_us, id, status, prompt_tokens, completion_tokens, total_tokens, spend_pusd, "
        "latency_ms, key_alias, metadata, session_id, tags"
    )
    after: tuple[str, int, str] = ("", -1, "")
    current: tuple[str, int] | None = None
    hour: dict[tuple[str, str], list[Any]] = {}
    while True:
        rows = tx.execute(
            db.sql(
                # a row value, which both databases take as the index's range (the same rows as
                # "d > :d OR (d = :d AND ...)", which PostgreSQL filtered from the index's start
                # on every page: hours at 10 M records)
                f"SELECT {cols} FROM records WHERE (deployment, start_us, id) > (:d, :s, :i) "
                "ORDER BY deployment, start_us, id LIMIT 20000"
            ),
            {"d": after[0], "s": after[1], "i": after[2]},
        ).fetchall()
        for dep, start, _id, status, pt, ct, tt, spend, latency, key, meta, session, tags in rows:
            at = (dep, start - start % _HOUR_US_0017)
            if at != current:
                if current is not None:
                    _flush_0017(db, tx, current[0], current[1], hour)
                current, hour = at, {}
            b = _bin_0017(latency)
            ok = 1 if status == "success" else 0
            for dim_value in _values_0017(key, meta, session, tags):
                acc = hour.get(dim_value)
                if acc is None:
                    acc = hour[dim_value] = [0, 0, 0, 0, 0, 0, Counter()]
                for j, v in enumerate((1, ok, pt, ct, tt, spend)):
                    acc[j] += v
                acc[6][b] += 1
        if not rows:
            break
        after = (rows[-1][0], rows[-1][1], rows[-1][2])
    if current is not None:
        _flush_0017(db, tx, current[0], current[1], hour)
