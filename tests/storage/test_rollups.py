"""Rollups agree with the raw records: any window, any time zone, several writers at once."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import textwrap
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from modelmeter.storage.database import Database
from modelmeter.storage.histogram import bin_of, bin_value
from modelmeter.storage.records import insert_rows
from modelmeter.usage import records as records_q
from modelmeter.usage import summary as summary_q
from modelmeter.usage.window import Window, parse_window

from .test_storage import make_row

DAY_US = 86_400_000_000


def exact(rows: list[dict], start_us: int, end_us: int) -> dict:
    inside = [r for r in rows if start_us <= r["start_us"] < end_us]
    lat = sorted(r["latency_ms"] for r in inside)

    def rank(q: float) -> float | None:
        return lat[max(math.ceil(q * len(lat)), 1) - 1] if lat else None

    return {
        "requests": len(inside),
        "succeeded": sum(r["status"] == "success" for r in inside),
        "prompt_tokens": sum(r["prompt_tokens"] for r in inside),
        "completion_tokens": sum(r["completion_tokens"] for r in inside),
        "spend_pusd": sum(r["spend_pusd"] for r in inside),
        "p50": rank(0.5),
        "p95": rank(0.95),
        "p99": rank(0.99),
    }


def check(db: Database, rows: list[dict], window: Window) -> None:
    got = summary_q.summary(db, "gpt", window)
    want = exact(rows, window.start_us, window.end_us)
    assert got["requests"] == want["requests"]
    assert got["succeeded"] == want["succeeded"]
    assert got["prompt_tokens"] == want["prompt_tokens"]
    assert got["completion_tokens"] == want["completion_tokens"]
    assert round(got["spend"] * 1e12) == want["spend_pusd"]
    for q in ("p50", "p95", "p99"):
        if want[q] is None:
            assert got[f"{q}_latency_ms"] is None
        else:
            assert got[f"{q}_latency_ms"] == pytest.approx(want[q], rel=0.01)


def test_bins_are_within_half_a_percent() -> None:
    for value in (0.02, 0.37, 1.0, 12.5, 99.9, 1234.5, 98765.4, 3_600_000.0):
        assert abs(bin_value(bin_of(value)) - value) / value <= 0.005


def test_any_window_sums_exactly(db: Database) -> None:
    rnd = random.Random(7)
    now = datetime(2026, 3, 10, 12, 34, 56).timestamp()
    rows = [
        make_row(
            now - rnd.uniform(0, 3 * 86400),
            latency=rnd.lognormvariate(5, 1),
            status="error" if rnd.random() < 0.1 else "success",
            prompt=rnd.randint(1, 500),
            completion=rnd.randint(0, 300),
        )
        for _ in range(3000)
    ]
    for i in range(0, len(rows), 250):
        insert_rows(db, rows[i : i + 250])
    end_us = int(now * 1e6) + 1
    for seconds in (59, 61, 3599, 3601, 86400, 2 * 86400 + 7, 3 * 86400 + 5):
        check(db, rows, Window(end_us - seconds * 1_000_000, end_us, ZoneInfo("UTC")))
    # A window whose edges fall mid-minute and mid-hour on both sides.
    check(db, rows, Window(end_us - 50 * 3600 * 1_000_000 - 17_000_001, end_us - 123_456_789, ZoneInfo("UTC")))
    series = summary_q.timeseries(db, "gpt", parse_window(start="2026-03-07T00:00:00Z", end="2026-03-10T23:00:00Z"))
    assert sum(b["requests"] for b in series["buckets"]) == len(rows)
    assert sum(b["errors"] for b in series["buckets"]) == sum(r["status"] == "error" for r in rows)


def test_time_zone_days_across_dst_do_not_double_count(db: Database) -> None:
    paris = ZoneInfo("Europe/Paris")
    # Europe/Paris moved to summer time on 2026-03-29 at 02:00 local: that day has 23 hours.
    rows = []
    for day in (28, 29, 30):
        for hour in (0, 1, 3, 12, 23):
            local = datetime(2026, 3, day, hour, 30, tzinfo=paris)
            rows.append(make_row(local.timestamp()))
    insert_rows(db, rows)
    total = 0
    for day in (28, 29, 30):
        window = parse_window(
            start=f"2026-03-{day:02d}T00:00:00", end=f"2026-03-{day + 1:02d}T00:00:00", tz="Europe/Paris"
        )
        got = summary_q.summary(db, "gpt", window)
        assert got["requests"] == 5
        total += got["requests"]
    assert total == len(rows)
    assert parse_window(start="2026-03-29T00:00:00", end="2026-03-30T00:00:00", tz="Europe/Paris").seconds == 23 * 3600


def _writer_script(url: str, seed: int, n: int) -> str:
    return textwrap.dedent(f"""
        import random, time
        from modelmeter.storage.database import Database
        from modelmeter.storage.records import insert_rows
        from tests.storage.test_storage import make_row
        rnd = random.Random({seed})
        db = Database({url!r})
        now = time.time()
        rows = [make_row(now - rnd.uniform(0, 7200), latency=rnd.uniform(1, 500),
                         status="error" if rnd.random() < 0.2 else "success",
                         prompt=rnd.randint(1, 100), completion=rnd.randint(1, 100)) for _ in range({n})]
        for i in range(0, len(rows), 50):
            insert_rows(db, rows[i:i + 50])
    """)


def test_two_writer_processes_keep_rollups_exact(db: Database, db_url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _writer_script(db_url, seed, 1500)]) for seed in (1, 2)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    cols = "status, prompt_tokens, completion_tokens, spend_pusd, latency_ms, start_us"
    rows = [
        dict(
            zip(
                ("status", "prompt_tokens", "completion_tokens", "spend_pusd", "latency_ms", "start_us"), r, strict=True
            )
        )
        for r in db.fetchall(f"SELECT {cols} FROM records")
    ]
    assert len(rows) == 3000
    check(db, rows, parse_window("24h"))


def test_upgrade_folds_old_histograms_and_keeps_totals(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database from before rollups (0002) upgraded to now: 0003 builds per-bin rows from its
    records, 0005 folds them into each bucket's row, 0006 drops them; the summary stays exact.
    0007 indexes the request ids of past hours, 0008 adds quarter hours."""
    from modelmeter.storage import migrations

    rnd = random.Random(3)
    now = datetime(2026, 3, 10, 12, 34, 56).timestamp()
    rows = [
        make_row(
            now - rnd.uniform(0, 2 * 86400),
            latency=rnd.lognormvariate(5, 1),
            status="error" if rnd.random() < 0.1 else "success",
            prompt=rnd.randint(1, 500),
        )
        for _ in range(1500)
    ]
    for i, r in enumerate(rows):
        r["request_id"] = f"chatcmpl-u{i}"
    db = Database(db_url)
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:2])
        migrations.migrate(db)
        later = ("key_alias", "priced_model", "session_id", "served_by", "attempts", "request", "response")
        cols = [c for c in rows[0] if c not in later]  # the 0001 columns
        with db.transaction() as tx:
            db.executemany(
                tx, f"INSERT INTO records ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})", rows
            )
        monkeypatch.undo()
        assert migrations.migrate(db) == [m.name for m in migrations.MIGRATIONS[2:]]
        end_us = int(now * 1e6) + 1
        # 0007 indexed the request ids of these (past) hours.
        week = Window(end_us - 7 * DAY_US, end_us, ZoneInfo("UTC"))
        assert [r["id"] for r in records_q.page(db, "gpt", week, search="chatcmpl-u7")["data"]] == [rows[7]["id"]]
        for seconds in (3601, 86400 + 61, 3 * 86400):
            check(db, rows, Window(end_us - seconds * 1_000_000, end_us, ZoneInfo("UTC")))
        # 0008 summed the minutes into quarter hours: a day's chart reads them.
        assert chart_matches_rows(db, rows, Window(end_us - DAY_US, end_us, ZoneInfo("UTC"))) > 50
        insert_rows(db, [make_row(now - 30, latency=250.0)])  # and the writer adds to folded rows
        check(db, [*rows, make_row(now - 30, latency=250.0)], Window(end_us - 86400_000_000, end_us, ZoneInfo("UTC")))
    finally:
        db.close()


def test_last_day_per_deployment_from_rollups_is_exact(db: Database) -> None:
    from modelmeter.config import Deployment

    other = Deployment(name="other", model="gpt-4o-mini", provider="openai")
    rnd = random.Random(5)
    now = datetime(2026, 3, 10, 12, 34, 56).timestamp()
    rows = [
        make_row(
            now - rnd.uniform(0, 2 * 86400),
            status="error" if rnd.random() < 0.2 else "success",
            **({"dep": other} if rnd.random() < 0.3 else {}),
        )
        for _ in range(2000)
    ]
    insert_rows(db, rows)
    now_us = int(now * 1e6) + 123_457  # mid-minute: edges come from raw rows
    got = summary_q.last_day_by_deployment(db, now_us)
    for name in ("gpt", "other"):
        day = [r for r in rows if r["deployment"] == name and r["start_us"] >= now_us - DAY_US]
        assert got[name]["requests"] == len(day) > 0
        assert got[name]["failed"] == sum(r["status"] != "success" for r in day)
        assert round(got[name]["spend"] * 1e12) == sum(r["spend_pusd"] for r in day)


def chart_matches_rows(db: Database, rows: list[dict], window: Window) -> int:
    """Every chart bucket's requests exactly, and its p95 within 1%, against the raw rows; returns
    the number of buckets that had requests."""
    series = summary_q.timeseries(db, "gpt", window)
    size = series["bucket_seconds"] * 1_000_000
    seen = 0
    for b in series["buckets"]:
        start = int(datetime.fromisoformat(b["start"].replace("Z", "+00:00")).timestamp() * 1e6)
        want = exact(rows, start, min(start + size, window.end_us))
        assert b["requests"] == want["requests"], b["start"]
        if want["p95"] is None:
            assert b["p95_latency_ms"] is None
        else:
            seen += 1
            assert b["p95_latency_ms"] == pytest.approx(want["p95"], rel=0.01)
    return seen


def test_chart_buckets_match_the_rows_at_every_resolution(db: Database) -> None:
    """1 hour in minutes, 1 day in quarter hours, 7 days in hours (also from a half-hour zone)."""
    rnd = random.Random(11)
    now = datetime(2026, 3, 10, 12, 34, 56).timestamp()
    rows = [
        make_row(
            now - rnd.uniform(0, 7 * 86400) if i % 3 else now - rnd.uniform(0, 3600), latency=rnd.lognormvariate(5, 1)
        )
        for i in range(4000)
    ]
    for i in range(0, len(rows), 500):
        insert_rows(db, rows[i : i + 500])
    end_us = int(now * 1e6) + 1
    for seconds, tz, bucket in (
        (3600, "UTC", 60),
        (86400, "UTC", 900),
        (86400, "Asia/Kolkata", 900),
        (7 * 86400, "UTC", 3600),
    ):
        window = Window(end_us - seconds * 1_000_000, end_us, ZoneInfo(tz))
        assert window.bucket_seconds() == bucket
        assert chart_matches_rows(db, rows, window) > 20
