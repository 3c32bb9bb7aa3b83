"""The fleet usage (Models page): one answer for every deployment whose figures equal each
deployment's own summary (the Usage tab's cards), whose totals equal their sums exactly, and whose
sparkline series equal the raw rows per bucket."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from modelmeter.config import Deployment, PriceOverride
from modelmeter.storage.database import Database
from modelmeter.usage import fleet as fleet_q
from modelmeter.usage import summary as summary_q
from modelmeter.usage.window import Window, parse_window

from .test_insights import store
from .test_storage import make_row

NY = ZoneInfo("America/New_York")
FIGURES = ("requests", "succeeded", "failed", "prompt_tokens", "completion_tokens", "total_tokens", "avg_latency_ms")


def deps() -> list[Deployment]:
    prices = (
        ("a-model", "1.5", "2.0"),
        ("b-model", "3.0", "15.0"),
        ("team/c-model", "0.1", "0.4"),
        ("idle-model", "1", "1"),
    )
    return [
        Deployment(
            name=name,
            model="gpt-4o-mini",
            provider="openai",
            api_base="http://x/v1",
            price=PriceOverride(input=Decimal(i), output=Decimal(o)),
        )
        for name, i, o in prices
    ]


def fleet_rows(n: int, seed: int, start: datetime, days: float) -> list[dict]:
    rnd = random.Random(seed)
    busy = deps()[:3]
    return [
        make_row(
            start.timestamp() + rnd.uniform(0, days * 86400),
            latency=rnd.lognormvariate(5, 1),
            status="error" if rnd.random() < 0.1 else "success",
            prompt=rnd.randint(1, 500),
            completion=rnd.randint(0, 300),
            dep=rnd.choices(busy, [5, 3, 1])[0],
        )
        for _ in range(n)
    ]


WINDOWS = [
    parse_window(start="2026-03-08T00:00:00", end="2026-03-09T00:00:00", tz="America/New_York"),  # 23 h (DST)
    parse_window(start="2026-03-06T00:00:00", end="2026-03-11T00:00:00", tz="America/New_York"),
    parse_window(start="2026-03-08T01:17:03", end="2026-03-08T04:45:59", tz="America/New_York"),
    Window(int(datetime(2026, 3, 10, 12, 34, 56).timestamp() * 1e6), int(datetime(2026, 3, 11).timestamp() * 1e6), NY),
]


def test_each_deployment_equals_its_summary_and_totals_equal_their_sums(db: Database) -> None:
    rows = fleet_rows(4000, 7, datetime(2026, 3, 4, tzinfo=NY), 7)
    store(db, rows)
    names = [d.name for d in deps()]
    for window in WINDOWS:
        got = fleet_q.fleet(db, names, window)
        by_name = {d["deployment"]: d for d in got["deployments"]}
        assert list(by_name) == names
        for name in names:
            want = summary_q.summary(db, name, window)
            for f in FIGURES:
                assert by_name[name][f] == want[f], (window, name, f)
            assert by_name[name]["spend"] == want["spend"]
            assert by_name[name]["error_rate"] == (want["failed"] / want["requests"] if want["requests"] else None)
        assert by_name["idle-model"]["requests"] == 0 and by_name["idle-model"]["error_rate"] is None
        totals = got["totals"]
        assert totals["requests"] > 0
        for f in ("requests", "succeeded", "failed", "prompt_tokens", "completion_tokens", "total_tokens"):
            assert totals[f] == sum(d[f] for d in got["deployments"]), f
        # Money exactly: in picodollars, as it is stored.
        assert round(totals["spend"] * 1e12) == sum(round(d["spend"] * 1e12) for d in got["deployments"])
        inside = [r for r in rows if window.start_us <= r["start_us"] < window.end_us]
        assert totals["requests"] == len(inside)
        assert round(totals["spend"] * 1e12) == sum(r["spend_pusd"] for r in inside)
        assert totals["error_rate"] == sum(r["status"] != "success" for r in inside) / len(inside)
        shares = [d["spend_share"] for d in got["deployments"]]
        assert abs(sum(shares) - 1) < 1e-9 and by_name["idle-model"]["spend_share"] == 0
        for name in names:
            assert by_name[name]["spend_share"] == (
                round(by_name[name]["spend"] * 1e12) / round(totals["spend"] * 1e12)
            )


def test_previous_window_and_change(db: Database) -> None:
    rows = fleet_rows(2000, 3, datetime(2026, 3, 4, tzinfo=NY), 7)
    store(db, rows)
    window = WINDOWS[0]
    got = fleet_q.fleet(db, [d.name for d in deps()], window)
    length = window.end_us - window.start_us
    before = [r for r in rows if window.start_us - length <= r["start_us"] < window.start_us]
    now = [r for r in rows if window.start_us <= r["start_us"] < window.end_us]
    assert got["previous"]["requests"] == len(before) > 0
    assert got["change"]["requests"] == (len(now) - len(before)) / len(before)
    rate = lambda rs: sum(r["status"] != "success" for r in rs) / len(rs)  # noqa: E731
    assert abs(got["change"]["error_rate"] - (rate(now) - rate(before)) / rate(before)) < 1e-12


def test_sparkline_series_equal_the_raw_rows_per_bucket(db: Database) -> None:
    rows = fleet_rows(3000, 11, datetime(2026, 3, 4, tzinfo=NY), 7)
    store(db, rows)
    names = [d.name for d in deps()]
    for window in WINDOWS:
        got = fleet_q.fleet(db, names, window)
        size_us = got["bucket_seconds"] * 1_000_000
        starts = [int(datetime.fromisoformat(b.replace("Z", "+00:00")).timestamp() * 1e6) for b in got["buckets"]]
        assert starts[0] <= window.start_us < starts[0] + size_us and starts[-1] < window.end_us
        for d in got["deployments"]:
            assert len(d["series"]["requests"]) == len(starts)
            for i, s in enumerate(starts):
                inside = [
                    r
                    for r in rows
                    if r["deployment"] == d["deployment"] and s <= r["start_us"] < min(s + size_us, window.end_us)
                ]
                assert d["series"]["requests"][i] == len(inside)
                assert d["series"]["errors"][i] == sum(r["status"] != "success" for r in inside)
                assert round(d["series"]["spend"][i] * 1e12) == sum(r["spend_pusd"] for r in inside)
        # the series agree with the deployment's own timeseries (the Usage tab's sparklines)
        ts = summary_q.timeseries(db, "a-model", window)
        a = next(d for d in got["deployments"] if d["deployment"] == "a-model")
        assert a["series"]["requests"] == [b["requests"] for b in ts["buckets"]]


def test_no_deployments(db: Database) -> None:
    got = fleet_q.fleet(db, [], parse_window("24h"))
    assert got["deployments"] == [] and got["totals"]["requests"] == 0 and got["totals"]["error_rate"] is None
