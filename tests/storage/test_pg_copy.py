"""Batches stored with COPY on PostgreSQL (storage.pg_copy) and rollups merged in Python
(storage.pg_rollups): a replayed batch stores each record once, and every rollup resolution equals
the sums of the raw rows. Run on SQLite too, where the same semantics come from the INSERT path."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest

from modelmeter.storage import pg_copy
from modelmeter.storage.database import Database
from modelmeter.storage.histogram import bin_of, decode
from modelmeter.storage.records import insert_rows
from modelmeter.storage.rollups import RESOLUTIONS

from .test_storage import make_row

_SUMS = ("requests", "succeeded", "prompt_tokens", "completion_tokens", "total_tokens", "spend_pusd")


def _batch(rnd: random.Random, n: int, now: float) -> list[Any]:
    return [
        make_row(
            now - rnd.uniform(0, 5400),
            latency=rnd.uniform(1, 900),
            status="error" if rnd.random() < 0.2 else "success",
            prompt=rnd.randint(1, 500),
            completion=rnd.randint(1, 500),
            tags=["team:a", "team:b"] if rnd.random() < 0.3 else None,
        )
        for _ in range(n)
    ]


def _copies(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each pg_copy.copy_batch call returned (True: the batch went in with COPY)."""
    calls: list[bool] = []
    real = pg_copy.copy_batch

    def spy(*args: Any) -> bool:
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(pg_copy, "copy_batch", spy)
    return calls


def _assert_rollups_equal_raw_rows(db: Database) -> None:
    raw = db.fetchall(
        "SELECT deployment, start_us, status, prompt_tokens, completion_tokens, spend_pusd, latency_ms FROM records"
    )
    assert raw
    for res in RESOLUTIONS:
        want: dict[tuple[str, int], Counter[str]] = {}
        bins: dict[tuple[str, int], Counter[str]] = {}
        for dep, start, status, prompt, completion, spend, latency in raw:
            key = (dep, start - start % res.size_us)
            c = want.setdefault(key, Counter())
            c["requests"] += 1
            c["succeeded"] += status == "success"
            c["prompt_tokens"] += prompt
            c["completion_tokens"] += completion
            c["total_tokens"] += prompt + completion
            c["spend_pusd"] += spend
            bins.setdefault(key, Counter())[str(bin_of(latency))] += 1
        got = db.fetchall(f"SELECT deployment, bucket_us, {', '.join(_SUMS)}, latency_bins FROM {res.table}")
        assert {(r[0], r[1]) for r in got} == set(want), res.name
        for r in got:
            key = (r[0], r[1])
            assert dict(zip(_SUMS, r[2:8], strict=True)) == {s: want[key][s] for s in _SUMS}, (res.name, key)
            assert Counter(decode(r[8])) == bins[key], (res.name, key)


def test_replayed_batch_is_stored_once_and_rollups_stay_exact(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    copies = _copies(monkeypatch)
    rnd = random.Random(17)
    now = time.time()
    first, second = _batch(rnd, 400, now), _batch(rnd, 300, now)
    insert_rows(db, first)
    insert_rows(db, second)
    # The connection broke at commit time after the second batch landed: the writer replays it
    # (retry) together with rows it had not stored yet.
    third = _batch(rnd, 200, now)
    insert_rows(db, second + third, retry=True)
    if db.dialect == "postgresql":
        assert copies == [True, True, True]  # the replay's new rows went in with COPY too
    rows = first + second + third
    assert db.fetchone("SELECT COUNT(*) FROM records")[0] == len(rows)
    assert db.fetchone("SELECT COUNT(*) FROM record_bodies")[0] == len(rows)
    tags = sum(2 for r in rows if r["tags"])
    assert db.fetchone("SELECT COUNT(*) FROM record_tags")[0] == tags
    _assert_rollups_equal_raw_rows(db)


def test_a_row_already_stored_sends_the_batch_through_the_inserts(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies = _copies(monkeypatch)
    rnd = random.Random(5)
    now = time.time()
    stored = _batch(rnd, 50, now)
    insert_rows(db, stored)
    fresh = _batch(rnd, 80, now)
    # Not flagged as a retry, yet one row is in the database: COPY refuses the batch, the INSERTs
    # skip that row, and the batch's other rows, bodies and tags are all stored.
    insert_rows(db, [stored[0], *fresh])
    if db.dialect == "postgresql":
        assert copies == [True, False]
    assert db.fetchone("SELECT COUNT(*) FROM records")[0] == len(stored) + len(fresh)
    assert db.fetchone("SELECT COUNT(*) FROM record_bodies")[0] == len(stored) + len(fresh)
    ids = {r[0] for r in db.fetchall("SELECT id FROM records")}
    assert ids == {r["id"] for r in stored + fresh}
    want_tags = sum(2 for r in stored + fresh if r["tags"])
    assert db.fetchone("SELECT COUNT(*) FROM record_tags")[0] == want_tags
