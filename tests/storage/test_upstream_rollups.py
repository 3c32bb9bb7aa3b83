"""The split by upstream from rollups (0016) equals the raw rows exactly: any window, written by the
batch writer or filled by the migration from records stored before it; only routed records are
rolled up; retention prunes the new tables. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from modelmeter.config import Deployment
from modelmeter.storage import migrations, upstream_rollups
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from modelmeter.storage.retention import Retention, prune
from modelmeter.usage import rollup_reads
from modelmeter.usage import upstreams as upstreams_q
from modelmeter.usage.window import Window

from .test_storage import DEP, make_row

NOW = datetime(2026, 3, 10, 12, 34, 56).timestamp()
OTHER = Deployment(name="other", model="gpt-4o-mini", provider="openai", api_base="http://up2/v1")
UPSTREAMS = ("a", "b", "c", None)  # None: no upstream answered


def routed_rows(n: int, seed: int, span_s: float = 3 * 86400) -> list[dict[str, Any]]:
    """Routed calls (two deployments) among plain ones; some latencies not rounded to 3 decimals,
    some on a half microsecond."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        ok = rnd.random() < 0.85
        r = make_row(
            NOW - rnd.uniform(0, span_s),
            latency=rnd.lognormvariate(5, 1),
            status="success" if ok else "error",
            prompt=rnd.randint(1, 400),
            completion=rnd.randint(0, 200),
            tags=["t1"] if i % 4 == 0 else None,
            dep=OTHER if i % 7 == 0 else DEP,
        )
        if i % 5 != 0:  # a routed call (1 in 5 plain)
            served = rnd.choice(UPSTREAMS) if ok else rnd.choice((None, "a"))
            tries = rnd.choice((1, 1, 1, 2, 3))
            r["served_by"] = served
            r["retries"] = tries - 1
            r["attempts"] = orjson.dumps([{"upstream": served or "a", "status": 200}] * tries).decode()
        if i % 11 == 0:
            r["latency_ms"] = rnd.lognormvariate(5, 1)  # full double precision
        elif i % 13 == 0:
            r["latency_ms"] = rnd.randint(1, 20_000) / 1000 + 0.0005  # x.yyy5: half a microsecond
        rows.append(r)
    return rows


def want_split(rows: list[dict[str, Any]], deployment: str, start_us: int, end_us: int, tag: str | None = None):
    """The split computed from the rows themselves, independently of the code under test."""
    acc: dict[str | None, list[int]] = {}
    for r in rows:
        if r["deployment"] != deployment or not start_us <= r["start_us"] < end_us or r.get("attempts") is None:
            continue
        if tag is not None and tag not in orjson.loads(r["tags"] or "[]"):
            continue
        s = acc.setdefault(r["served_by"], [0, 0, 0, 0, 0])
        ok = r["status"] == "success"
        s[0] += 1
        s[1] += ok
        s[2] += ok and r["retries"] > 0
        s[3] += int(r["latency_ms"] * 1000 + 0.5)
        s[4] += r["spend_pusd"]
    data = [
        {
            "upstream": up,
            "requests": n,
            "succeeded": ok,
            "avg_latency_ms": round(us / n / 1000, 3),
            "spend": spend / 1e12,
            "rescued": rescued,
        }
        for up, (n, ok, rescued, us, spend) in acc.items()
    ]
    data.sort(key=lambda d: (-d["requests"], d["upstream"] or ""))
    return data


def check(db: Database, rows: list[dict[str, Any]], deployment: str, window: Window, tag: str | None = None) -> None:
    got = upstreams_q.split(db, deployment, window, tag)
    want = want_split(rows, deployment, window.start_us, window.end_us, tag)
    assert [{**d, "spend": round(d["spend"] * 1e12)} for d in got["data"]] == [
        {**d, "spend": round(d["spend"] * 1e12)} for d in want
    ]
    assert got["rescued"] == sum(d["rescued"] for d in want)
    # and the float average of the raw latencies, as the split computed it before 0016
    for d in got["data"]:
        inside = [
            r["latency_ms"]
            for r in rows
            if r["deployment"] == deployment
            and window.start_us <= r["start_us"] < window.end_us
            and r.get("attempts") is not None
            and r["served_by"] == d["upstream"]
            and (tag is None or tag in orjson.loads(r["tags"] or "[]"))
        ]
        assert d["avg_latency_ms"] == pytest.approx(sum(inside) / len(inside), abs=1e-3)


def windows() -> list[Window]:
    end_us = int(NOW * 1e6) + 1
    utc = ZoneInfo("UTC")
    out = [Window(end_us - s * 1_000_000, end_us, utc) for s in (59, 61, 3599, 3601, 86400, 2 * 86400 + 7, 4 * 86400)]
    # edges mid-minute and mid-hour on both sides, and one of whole hours (no raw rows at all)
    out.append(Window(end_us - 50 * 3600 * 1_000_000 - 17_000_001, end_us - 123_456_789, utc))
    hour = end_us - end_us % 3_600_000_000
    out.append(Window(hour - 30 * 3_600_000_000, hour, utc))
    return out


def test_split_from_rollups_equals_the_raw_rows(db: Database) -> None:
    rows = routed_rows(4000, 7)
    for i in range(0, len(rows), 300):
        insert_rows(db, rows[i : i + 300])
    for window in windows():
        for dep in ("gpt", "other"):
            check(db, rows, dep, window)
    check(db, rows, "gpt", windows()[5], tag="t1")
    got = upstreams_q.split(db, "gpt", windows()[6])
    assert {d["upstream"] for d in got["data"]} == set(UPSTREAMS) and got["rescued"] > 0


def test_rollups_against_a_scan_of_the_same_window_in_sql(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same window read as raw rows only (the segments made all raw): the same figures."""
    rows = routed_rows(1500, 3)
    insert_rows(db, rows)
    for window in windows():
        rolled = upstreams_q.split(db, "gpt", window)
        with monkeypatch.context() as m:
            m.setattr(upstreams_q, "segments", lambda a, b: {"raw": [(a, b)], "minute": [], "hour": []})
            raw = upstreams_q.split(db, "gpt", window)
        assert rolled == raw
        assert rolled["data"] or window.seconds < 3600


def test_only_routed_records_are_rolled_up(db: Database) -> None:
    plain = [make_row(NOW - i) for i in range(50)]
    insert_rows(db, plain)
    for res in upstream_rollups.UPSTREAM_RESOLUTIONS:
        assert db.fetchone(f"SELECT COUNT(*) FROM {upstream_rollups.table(res)}")[0] == 0
    insert_rows(db, routed_rows(40, 1, span_s=600))
    assert db.fetchone("SELECT COUNT(*) FROM rollup_upstream_minute")[0] > 0


def test_upgrade_fills_the_rollups_from_stored_records(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records stored before 0016: the migration fills the rollups (in its own SQL, never today's
    writer code), the split is exact, and the writer adds to the filled rows."""
    rows = routed_rows(2500, 5)
    insert_rows(db, rows)
    with db.transaction() as tx:  # back to the 0015 layout
        tx.execute("DROP TABLE rollup_upstream_minute")
        tx.execute("DROP TABLE rollup_upstream_hour")
        tx.execute("DELETE FROM schema_migrations WHERE name = '0016_upstream_rollups'")

    def trap(*_: object, **__: object) -> None:
        raise AssertionError("a shipped migration called today's application code")

    with monkeypatch.context() as m:
        for name in ("add_rows", "aggregate", "coarsen", "latency_us", "sums_of"):
            m.setattr(upstream_rollups, name, trap)
        assert migrations.migrate(db) == ["0016_upstream_rollups"]
    for window in windows():
        check(db, rows, "gpt", window)
        check(db, rows, "other", window)
    later = routed_rows(300, 9, span_s=3600)
    insert_rows(db, later)
    check(db, rows + later, "gpt", windows()[5])


def test_retention_prunes_the_upstream_rollups(db: Database) -> None:
    rows = routed_rows(500, 2, span_s=10 * 86400)
    insert_rows(db, rows)
    cut = NOW - 5 * 86400
    prune(db, Retention(rollups_days=5), now=NOW)
    for res in upstream_rollups.UPSTREAM_RESOLUTIONS:
        t = upstream_rollups.table(res)
        assert db.fetchone(f"SELECT COUNT(*) FROM {t} WHERE bucket_us < :c", {"c": int(cut * 1e6)})[0] == 0
        assert db.fetchone(f"SELECT COUNT(*) FROM {t}")[0] > 0


def test_segments_are_those_of_the_rollup_reads() -> None:
    """The split splits a window as the summary does (whole hours, whole minutes, raw edges)."""
    assert upstreams_q.segments is rollup_reads.segments
