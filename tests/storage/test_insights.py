"""Usage insights agree with the raw records: the cards' previous window, the distributions and the
throughput panel, at every resolution and across a DST change."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
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
