"""Usage insights agree with the raw records: the cards' previous window, the distributions and the
throughput panel, at every resolution and across a DST change."""

from __future__ import annotations

import math
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from modelmeter.storage import rollups
from modelmeter.storage.database import Database
from modelmeter.storage.histogram import bin_of
from modelmeter.storage.records import insert_rows
from modelmeter.usage import breakdowns, insights, rollup_reads
from modelmeter.usage import summary as summary_q
from modelmeter.usage.window import Window, parse_window

from .test_rollups import exact
from .test_storage import make_row

NY = ZoneInfo("America/New_York")  # summer time from 2026-03-08 02:00 local: that day has 23 hours


def spread(n: int, seed: int, start: datetime, days: float) -> list[dict]:
    rnd = random.Random(seed)
    t0 = start.timestamp()
    return [
        make_row(
            t0 + rnd.uniform(0, days * 86400),
            latency=rnd.lognormvariate(5, 1),
            status="error" if rnd.random() < 0.1 else "success",
            prompt=rnd.randint(1, 500),
            completion=rnd.randint(0, 300),
        )
        for _ in range(n)
    ]


def store(db: Database, rows: list[dict]) -> None:
    for i in range(0, len(rows), 500):
        insert_rows(db, rows[i : i + 500])


def test_previous_window_and_changes_equal_the_raw_rows(db: Database) -> None:
    rows = spread(3000, 5, datetime(2026, 3, 5, tzinfo=NY), 6)
    store(db, rows)
    windows = [
        parse_window(start="2026-03-08T00:00:00", end="2026-03-09T00:00:00", tz="America/New_York"),  # 23 h
        parse_window(start="2026-03-09T00:00:00", end="2026-03-10T00:00:00", tz="America/New_York"),
        parse_window(start="2026-03-08T01:17:03", end="2026-03-08T04:45:59", tz="America/New_York"),
        Window(
            int(datetime(2026, 3, 10, 12, 34, 56).timestamp() * 1e6), int(datetime(2026, 3, 11).timestamp() * 1e6), NY
        ),
    ]
    for window in windows:
        got = summary_q.summary_with_previous(db, "gpt", window)
        length = window.end_us - window.start_us
        prev = got["previous"]
        want = exact(rows, window.start_us - length, window.start_us)
        assert prev["requests"] == want["requests"] > 0
        assert prev["succeeded"] == want["succeeded"]
        assert prev["completion_tokens"] == want["completion_tokens"]
        assert round(prev["spend"] * 1e12) == want["spend_pusd"]
        inside = [r for r in rows if window.start_us - length <= r["start_us"] < window.start_us]
        assert prev["avg_latency_ms"] == pytest.approx(sum(r["latency_ms"] for r in inside) / len(inside), abs=1e-3)
        now = exact(rows, window.start_us, window.end_us)
        assert got["change"]["requests"] == pytest.approx((now["requests"] - want["requests"]) / want["requests"])
        tokens_now = sum(r["total_tokens"] for r in rows if window.start_us <= r["start_us"] < window.end_us)
        tokens_before = sum(r["total_tokens"] for r in inside)
        assert got["change"]["total_tokens"] == pytest.approx((tokens_now - tokens_before) / tokens_before, abs=1e-6)
        assert got["change"]["spend"] == pytest.approx((now["spend_pusd"] - want["spend_pusd"]) / want["spend_pusd"])


def test_no_change_without_a_previous_figure(db: Database) -> None:
    store(db, [make_row(datetime(2026, 3, 10, 12).timestamp())])
    got = summary_q.summary_with_previous(
        db, "gpt", parse_window(start="2026-03-10T00:00:00Z", end="2026-03-11T00:00:00Z")
    )
    assert got["requests"] == 1 and got["previous"]["requests"] == 0
    assert got["change"] == dict.fromkeys(summary_q.CARD_FIGURES)


def raw_distribution(values: list[float]) -> dict:
    """The panel's figures computed from raw values: nearest-rank percentiles and bar counts."""
    ordered = sorted(values)

    def rank(q: float) -> float | None:
        return ordered[max(math.ceil(q * len(ordered)), 1) - 1] if ordered else None

    bars: dict[tuple[float, float], int] = {}
    for v in values:
        edges = insights.bar_edges(insights.bar_of(bin_of(v)))
        assert edges[0] - 1e-6 <= v < edges[1] + 1e-6
        bars[edges] = bars.get(edges, 0) + 1
    return {"count": len(values), **{f"p{q}_ms": rank(q / 100) for q in (50, 95, 99)}, "bars": bars}


def check_distribution(got: dict, values: list[float]) -> None:
    want = raw_distribution(values)
    assert got["count"] == want["count"]
    assert {(b["low_ms"], b["high_ms"]): b["count"] for b in got["bars"]} == want["bars"]
    assert sum(b["count"] for b in got["bars"]) == len(values)
    for q in ("p50_ms", "p95_ms", "p99_ms"):
        if want[q] is None:
            assert got[q] is None
        else:
            assert got[q] == pytest.approx(want[q], rel=0.005)


def windows_across_dst(end_us: int) -> list[Window]:
    return [
        Window(end_us - 3600 * 1_000_000, end_us, NY),  # minutes
        Window(end_us - 86400 * 1_000_000, end_us, NY),  # quarter hours
        Window(end_us - 7 * 86400 * 1_000_000, end_us, NY),  # hours
        Window(end_us - 30 * 86400 * 1_000_000, end_us, NY),  # 6 hours (from hours)
        Window(end_us - 60 * 86400 * 1_000_000, end_us, NY),  # local days, one of 23 hours
        parse_window(start="2026-03-08T00:00:00", end="2026-03-09T00:00:00", tz="America/New_York"),
        parse_window(start="2026-03-07T23:59:31.5", end="2026-03-08T03:00:07", tz="America/New_York"),
    ]


@pytest.fixture
def dst_rows(db: Database) -> list[dict]:
    # Seven days around the change, a dense last hour, and some rows without a first token.
    rows = spread(2500, 9, datetime(2026, 3, 5, tzinfo=NY), 6)
    end = datetime(2026, 3, 11, 0, 0, 0, tzinfo=NY).timestamp()
    rnd = random.Random(3)
    rows += [make_row(end - rnd.uniform(0, 3600), latency=rnd.lognormvariate(4, 1.2)) for _ in range(500)]
    for r in rows[::7]:
        r["ttft_ms"] = None
    store(db, rows)
    return rows


def in_window(rows: list[dict], a: int, b: int) -> list[dict]:
    return [r for r in rows if a <= r["start_us"] < b]


def test_distributions_equal_the_raw_rows(db: Database, dst_rows: list[dict]) -> None:
    end_us = int(datetime(2026, 3, 11, 0, 0, 0, tzinfo=NY).timestamp() * 1e6) + 1
    for window in windows_across_dst(end_us):
        got = insights.distributions(db, "gpt", window)
        inside = in_window(dst_rows, window.start_us, window.end_us)
        assert inside
        check_distribution(got["latency"], [r["latency_ms"] for r in inside])
        check_distribution(got["ttft"], [r["ttft_ms"] for r in inside if r["ttft_ms"] is not None])


def test_throughput_buckets_equal_the_raw_rows(db: Database, dst_rows: list[dict]) -> None:
    end_us = int(datetime(2026, 3, 11, 0, 0, 0, tzinfo=NY).timestamp() * 1e6) + 1
    sizes = set()
    for window in windows_across_dst(end_us):
        got = insights.throughput(db, "gpt", window)
        size = got["bucket_seconds"] * 1_000_000
        sizes.add(got["bucket_seconds"])
        assert got["buckets"]
        for b in got["buckets"]:
            start = int(datetime.fromisoformat(b["start"].replace("Z", "+00:00")).timestamp() * 1e6)
            inside = in_window(dst_rows, start, min(start + size, window.end_us))
            tokens = sum(r["completion_tokens"] for r in inside)
            seconds = sum(r["latency_ms"] for r in inside) / 1000
            assert b["requests"] == len(inside), b
            assert b["completion_tokens"] == tokens
            assert b["request_seconds"] == pytest.approx(seconds, abs=1e-5)
            if tokens and seconds:
                assert b["output_tokens_per_s"] == pytest.approx(tokens / seconds, abs=1e-3)
                assert b["ms_per_output_token"] == pytest.approx(seconds * 1000 / tokens, abs=1e-3)
            else:
                assert b["ms_per_output_token"] is None or tokens
    assert sizes == {60, 900, 3600, 21600, 86400}


def test_a_tag_panel_is_its_rows(db: Database) -> None:
    rnd = random.Random(1)
    t0 = datetime(2026, 3, 8, 1, 30, tzinfo=NY).timestamp()
    rows = [
        make_row(t0 + rnd.uniform(0, 3 * 3600), latency=rnd.lognormvariate(5, 1), tags=["t1"] if i % 3 else None)
        for i in range(600)
    ]
    store(db, rows)
    window = parse_window(start="2026-03-08T00:00:00", end="2026-03-09T00:00:00", tz="America/New_York")
    tagged = [r for r in rows if "t1" in (r["tags"] or "")]
    got = insights.distributions(db, "gpt", window, tag="t1")
    check_distribution(got["latency"], [r["latency_ms"] for r in tagged])
    tp = insights.throughput(db, "gpt", window, tag="t1")
    assert sum(b["requests"] for b in tp["buckets"]) == len(tagged)
    assert sum(b["completion_tokens"] for b in tp["buckets"]) == sum(r["completion_tokens"] for r in tagged)


def test_the_histogram_cache_sees_new_rows(db: Database) -> None:
    """A refresh reuses the merged histograms of unchanged ranges, and never a stale one."""
    cache = rollup_reads.BinsCache()
    rows = spread(1500, 21, datetime(2026, 3, 6, tzinfo=NY), 4)
    store(db, rows)
    window = parse_window(start="2026-03-06T00:00:00", end="2026-03-10T00:00:00", tz="America/New_York")
    first = insights.distributions(db, "gpt", window, cache=cache)
    assert insights.distributions(db, "gpt", window, cache=cache) == first
    assert summary_q.summary(db, "gpt", window, cache=cache) == summary_q.summary(db, "gpt", window)
    late = spread(300, 22, datetime(2026, 3, 7, tzinfo=NY), 2)  # into hours already cached
    store(db, late)
    again = insights.distributions(db, "gpt", window, cache=cache)
    assert again == insights.distributions(db, "gpt", window)
    assert again["latency"]["count"] == first["latency"]["count"] + 300
    check_distribution(
        again["latency"], [r["latency_ms"] for r in in_window(rows + late, window.start_us, window.end_us)]
    )
    got = summary_q.summary_with_previous(db, "gpt", window, cache=cache)
    assert got == summary_q.summary_with_previous(db, "gpt", window)


STATUSES = (400, 401, 404, 408, 413, 429, 499, 500, 502, 503, 504, 200)


def raw_class(http_status: int) -> str:
    """The classes as the endpoint documents them, written out again for the raw rows."""
    if http_status == 429:
        return "rate_limited"
    if http_status == 499:
        return "hangup"
    if http_status in (408, 504):
        return "timeout"
    if 400 <= http_status < 500:
        return "client"
    if 500 <= http_status < 600:
        return "upstream"
    return "other"


def with_statuses(rows: list[dict], seed: int) -> list[dict]:
    rnd = random.Random(seed)
    for r in rows:
        if r["status"] != "success":
            r["http_status"] = rnd.choice(STATUSES)
    return rows


def test_errors_by_type_equal_the_raw_rows(db: Database) -> None:
    rows = with_statuses(spread(3000, 13, datetime(2026, 3, 5, tzinfo=NY), 6), 2)
    end = datetime(2026, 3, 11, 0, 0, 0, tzinfo=NY).timestamp()
    rnd = random.Random(4)
    rows += with_statuses(
        [make_row(end - rnd.uniform(0, 3600), status="error" if i % 2 else "success") for i in range(400)], 5
    )
    store(db, rows)
    end_us = int(end * 1e6) + 1
    sizes = set()
    for window in windows_across_dst(end_us):
        got = insights.errors(db, "gpt", window)
        size = got["bucket_seconds"] * 1_000_000
        sizes.add(got["bucket_seconds"])
        totals = dict.fromkeys(got["classes"], 0)
        for b in got["buckets"]:
            start = int(datetime.fromisoformat(b["start"].replace("Z", "+00:00")).timestamp() * 1e6)
            failed = [r for r in in_window(rows, start, min(start + size, window.end_us)) if r["status"] != "success"]
            want = dict.fromkeys(got["classes"], 0)
            for r in failed:
                want[raw_class(r["http_status"])] += 1
            assert {c: b[c] for c in got["classes"]} == want, b["start"]
            assert b["errors"] == len(failed) == sum(want.values())
            for c in totals:
                totals[c] += want[c]
        assert got["totals"] == totals
        assert sum(totals.values()) > 0
    assert sizes == {60, 900, 3600, 21600, 86400}
    # The cards count the same failures.
    window = windows_across_dst(end_us)[2]
    assert summary_q.summary(db, "gpt", window)["failed"] == sum(insights.errors(db, "gpt", window)["totals"].values())


def test_errors_of_a_tag_are_its_rows(db: Database) -> None:
    t0 = datetime(2026, 3, 8, 1, 0, tzinfo=NY).timestamp()
    rows = with_statuses(
        [
            make_row(t0 + i * 20, status="error" if i % 3 == 0 else "success", tags=["t9"] if i % 2 else None)
            for i in range(300)
        ],
        8,
    )
    store(db, rows)
    window = parse_window(start="2026-03-08T00:00:00", end="2026-03-09T00:00:00", tz="America/New_York")
    got = insights.errors(db, "gpt", window, tag="t9")
    want = dict.fromkeys(got["classes"], 0)
    for r in rows:
        if r["status"] != "success" and "t9" in (r["tags"] or ""):
            want[raw_class(r["http_status"])] += 1
    assert got["totals"] == want and sum(want.values()) > 10


def test_upgrade_to_0015_counts_the_errors_already_stored(db: Database) -> None:
    """A database from before 0015 (its rollups without the counters) with records: 0015 adds the
    counters and fills them from the records, so errors by type are exact for older data too."""
    from modelmeter.storage import migrations

    rows = with_dimensions(with_statuses(spread(1200, 17, datetime(2026, 3, 7, tzinfo=NY), 3), 6), 7)
    store(db, rows)
    with db.transaction() as tx:  # back to the 0013 layout (the day table, from 0022, left as it is)
        for res in (rollups.MINUTE, rollups.QUARTER, rollups.HOUR):
            for col in rollups.ERROR_CLASSES:
                tx.execute(f"ALTER TABLE {res.table} DROP COLUMN {col}")
        tx.execute("DROP TABLE rollup_dim_minute")
        tx.execute("DROP TABLE rollup_dim_hour")
        tx.execute("DELETE FROM schema_migrations WHERE name = '0015_insights'")
    assert migrations.migrate(db) == ["0015_insights"]
    for window in (
        parse_window(start="2026-03-07T00:00:00", end="2026-03-10T00:00:00", tz="America/New_York"),
        parse_window(start="2026-03-08T00:00:00", end="2026-03-09T00:00:00", tz="America/New_York"),
    ):
        got = insights.errors(db, "gpt", window)
        want = dict.fromkeys(got["classes"], 0)
        for r in in_window(rows, window.start_us, window.end_us):
            if r["status"] != "success":
                want[raw_class(r["http_status"])] += 1
        assert got["totals"] == want and sum(want.values()) > 0
        assert sum(b["requests"] for b in got["buckets"]) >= len(in_window(rows, window.start_us, window.end_us))
        check_breakdowns(db, rows, window)


KEYS = ("team-a", "team-b", "ci", None)
CALL_TYPES = ("chat", "messages", "embeddings", "responses")


def with_dimensions(rows: list[dict], seed: int) -> list[dict]:
    rnd = random.Random(seed)
    for r in rows:
        r["key_alias"] = rnd.choice(KEYS)
        r["call_type"] = rnd.choice(CALL_TYPES)
    return rows


def check_breakdowns(db: Database, rows: list[dict], window: Window) -> None:
    inside = in_window(rows, window.start_us, window.end_us)
    cards = summary_q.summary(db, "gpt", window)
    for by, col in (("call_type", "call_type"),):
        got = breakdowns.breakdown(db, "gpt", window, by)
        want: dict[str, dict] = {}
        for r in inside:
            w = want.setdefault(r[col] or "", {"requests": 0, "failed": 0, "total_tokens": 0, "spend_pusd": 0})
            w["requests"] += 1
            w["failed"] += r["status"] != "success"
            w["total_tokens"] += r["total_tokens"]
            w["spend_pusd"] += r["spend_pusd"]
        assert {
            r["value"]: {
                "requests": r["requests"],
                "failed": r["failed"],
                "total_tokens": r["total_tokens"],
                "spend_pusd": round(r["spend"] * 1e12),
            }
            for r in got["rows"]
        } == want
        for r in got["rows"]:
            assert r["error_rate"] == pytest.approx(r["failed"] / r["requests"])
        assert [r["spend"] for r in got["rows"]] == sorted((r["spend"] for r in got["rows"]), reverse=True)
        total = got["total"]
        assert total["requests"] == cards["requests"] == len(inside)
        assert total["failed"] == cards["failed"] and total["total_tokens"] == cards["total_tokens"]
        assert round(total["spend"] * 1e12) == round(cards["spend"] * 1e12)


def test_breakdowns_equal_the_raw_rows_and_add_up(db: Database) -> None:
    rows = with_dimensions(with_statuses(spread(2500, 31, datetime(2026, 3, 5, tzinfo=NY), 6), 3), 4)
    end = datetime(2026, 3, 11, 0, 0, 0, tzinfo=NY).timestamp()
    rnd = random.Random(9)
    rows += with_dimensions([make_row(end - rnd.uniform(0, 3600)) for _ in range(300)], 10)
    store(db, rows)
    for window in windows_across_dst(int(end * 1e6) + 1):
        check_breakdowns(db, rows, window)
