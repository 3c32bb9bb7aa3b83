"""Hourly rollups of the high-cardinality dimensions (API key, end user, tag, session), bounded:
per (deployment, dimension, hour) the top values have a row each and everything else is in one
"others" row (``other = 1``, value ""), so the rows always add up to the hour exactly
(``storage.top_values`` says which values are listed and what that guarantees).

Added by the batch writer in the same transaction as the records. A batch is summed per
(deployment, dimension, hour, value) in memory first; only listed values and "others" are written,
so a batch writes at most about TOP_N + 1 rows per dimension and hour however many users it has.
(An upsert per value was what took ingest from ~20,000 to ~13,000 records/s with 10,000 keys.)"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from modelmeter.storage import histogram
from modelmeter.storage.database import Database
from modelmeter.storage.rollups import HOUR
from modelmeter.storage.top_values import N_SUMS, Acc, HourList, Plan, new_acc, plan_batch

TABLE = "rollup_top_hour"
# Dimension name (as the API takes it) -> the log filter that shows its requests.
TOP_DIMENSIONS = ("key", "user", "tag", "session")
SUMS = ("requests", "succeeded", "prompt_tokens", "completion_tokens", "total_tokens", "spend_pusd")
KEEP_HOURS = 4  # hour lists a process keeps in memory per (deployment, dimension)


def user_of(metadata: str | None) -> str:
    """The request's ``user`` field (kept in the record's metadata by gateway/metadata.py)."""
    if not metadata or '"user"' not in metadata:
        return ""
    try:
        user = orjson.loads(metadata).get("user")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return user if isinstance(user, str) else ""


def values_of(row: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(dimension, value) pairs of one record; "" is "none" (no key, no user, no tag, no session).
    A record with several tags counts once under each."""
    yield "key", row["key_alias"] or ""
    yield "user", user_of(row["metadata"])
    yield "session", row["session_id"] or ""
    tags = row["tags"]
    if tags and tags != "[]":
        for tag in dict.fromkeys(orjson.loads(tags)):
            yield "tag", str(tag)
    else:
        yield "tag", ""


def aggregate(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, int], dict[str, Acc]]:
    """The batch per (deployment, dimension, hour) and value: sums and latency histogram."""
    out: dict[tuple[str, str, int], dict[str, Acc]] = {}
    size = HOUR.size_us
    bin_of = histogram.bin_of
    for r in rows:
        t = r["start_us"]
        bucket = t - t % size
        dep = r["deployment"]
        ok = 1 if r["status"] == "success" else 0
        b = str(bin_of(r["latency_ms"]))
        for dim, value in values_of(r):
            group = out.get((dep, dim, bucket))
            if group is None:
                group = out[(dep, dim, bucket)] = {}
            acc = group.get(value)
            if acc is None:
                group[value] = [
                    1,
                    ok,
                    r["prompt_tokens"],
                    r["completion_tokens"],
                    r["total_tokens"],
                    r["spend_pusd"],
                    {b: 1},
                ]
                continue
            acc[0] += 1
            acc[1] += ok
            acc[2] += r["prompt_tokens"]
            acc[3] += r["completion_tokens"]
            acc[4] += r["total_tokens"]
            acc[5] += r["spend_pusd"]
            bins = acc[6]
            bins[b] = bins.get(b, 0) + 1
    return out


class TopLists:
    """A process's hour lists for one database (the writer's; guarded for retries from elsewhere)."""

    def __init__(self) -> None:
        self.hours: dict[tuple[str, str, int], HourList] = {}
        self.lock = threading.Lock()

    def hour(self, tx: Any, db: Database, key: tuple[str, str, int]) -> HourList:
        got = self.hours.get(key)
        if got is None:
            got = self.hours[key] = _load(tx, db, key)
            self._prune(key)
        return got

    def _prune(self, key: tuple[str, str, int]) -> None:
        mine = sorted(k[2] for k in self.hours if k[:2] == key[:2])
        for bucket in mine[:-KEEP_HOURS]:
            self.hours.pop((key[0], key[1], bucket), None)


_LISTS: weakref.WeakKeyDictionary[Database, TopLists] = weakref.WeakKeyDictionary()


def lists_for(db: Database) -> TopLists:
    got = _LISTS.get(db)
    if got is None:
        got = _LISTS[db] = TopLists()
    return got


def forget(db: Database) -> None:
    """A batch was rolled back: the lists may hold what never reached the database. Start again
    from the stored rows (totals stay exact either way; this keeps listed rows exact)."""
    _LISTS.pop(db, None)


def _load(tx: Any, db: Database, key: tuple[str, str, int]) -> HourList:
    rows = tx.execute(
        db.sql(
            f"SELECT value, spend_pusd, requests FROM {TABLE} WHERE deployment = :d AND dim = :m "
            "AND bucket_us = :b AND other = 0"
        ),
        {"d": key[0], "m": key[1], "b": key[2]},
    ).fetchall()
    return HourList(listed={r[0] for r in rows}, base={r[0]: (int(r[1]), int(r[2])) for r in rows})


_COLS = ("deployment", "dim", "bucket_us", "other", "value", *SUMS, "latency_bins")


def _upsert_sql(db: Database) -> str:
    values = ", ".join(db.json_param(c) if c == "latency_bins" else ":" + c for c in _COLS)
    return (
        f"INSERT INTO {TABLE} ({', '.join(_COLS)}) VALUES ({values}) "
        "ON CONFLICT (deployment, dim, bucket_us, other, value) DO UPDATE SET "
        + ", ".join(f"{c} = {TABLE}.{c} + excluded.{c}" for c in SUMS)
        + f", latency_bins = mm_bins_add({TABLE}.latency_bins, excluded.latency_bins)"
    )


_WHERE_ROW = "deployment = :deployment AND dim = :dim AND bucket_us = :bucket_us AND other = 0 AND value = :value"


def add_rows(db: Database, tx: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add finished record rows to the hourly top-N rollups, inside the caller's transaction."""
    lists = lists_for(db)
    with lists.lock:
        writes: list[dict[str, Any]] = []
        for key, groups in sorted(aggregate(rows).items()):
            plan = plan_batch(lists.hour(tx, db, key), groups)
            writes += _apply(db, tx, key, plan)
        if writes:
            writes.sort(key=lambda w: (w["deployment"], w["dim"], w["bucket_us"], w["other"], w["value"]))
            db.executemany(tx, _upsert_sql(db), writes)


def _apply(db: Database, tx: Any, key: tuple[str, str, int], plan: Plan) -> list[dict[str, Any]]:
    dep, dim, bucket = key
    others = plan.others
    for value in plan.demoted:  # the whole stored row moves to "others"
        p = {"deployment": dep, "dim": dim, "bucket_us": bucket, "value": value}
        row = tx.execute(
            db.sql(f"SELECT {', '.join(SUMS)}, latency_bins FROM {TABLE} WHERE {_WHERE_ROW}"), p
        ).fetchone()
        if row is None:
            continue
        add_acc = [int(v) for v in row[:N_SUMS]] + [histogram.decode(row[N_SUMS])]
        _add(others, add_acc)
        tx.execute(db.sql(f"DELETE FROM {TABLE} WHERE {_WHERE_ROW}"), p)
    out = [_write(dep, dim, bucket, 0, value, acc) for value, acc in plan.rows.items()]
    if any(others[:N_SUMS]) or any(others[N_SUMS].values()):
        out.append(_write(dep, dim, bucket, 1, "", others))
    return out


def _add(into: Acc, more: Acc) -> None:
    for i in range(N_SUMS):
        into[i] += more[i]
    bins = into[N_SUMS]
    for k, n in more[N_SUMS].items():
        bins[k] = bins.get(k, 0) + n


def _write(dep: str, dim: str, bucket: int, other: int, value: str, acc: Acc) -> dict[str, Any]:
    bins = {k: n for k, n in acc[N_SUMS].items() if n}
    return {
        "deployment": dep,
        "dim": dim,
        "bucket_us": bucket,
        "other": other,
        "value": value,
        **dict(zip(SUMS, acc[:N_SUMS], strict=True)),
        "latency_bins": orjson.dumps(bins).decode(),
    }


__all__ = ["TABLE", "TOP_DIMENSIONS", "add_rows", "aggregate", "forget", "new_acc", "user_of", "values_of"]
