"""The cost, cache, retries and reasoning panels agree with the raw records at every resolution,
across a DST change and with partial buckets at a window's edges; the 0018 backfill fills the
rollups exactly as the writer does."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal

import pytest

from modelmeter.config import Deployment
from modelmeter.metering.pricing import PriceOverride, Pricer
from modelmeter.metering.record import CallRecord, finish, new_record_id
from modelmeter.metering.usage import Usage
from modelmeter.storage import rollups
from modelmeter.storage.database import Database
from modelmeter.usage import panels
from modelmeter.usage import summary as summary_q
from modelmeter.usage.window import Window, parse_window

from .test_insights import NY, in_window, store, windows_across_dst

PRICER = Pricer()
FULL = PriceOverride(
    input=Decimal("2.5"),
    cached_input=Decimal("1.25"),
    cache_write=Decimal("3.125"),
    output=Decimal("10"),
    reasoning=Decimal("12.5"),
)
# Reasoning priced as output; no cache prices (cached input at the input rate: nothing saved).
PLAIN = PriceOverride(input=Decimal("0.15"), output=Decimal("0.6"))


def dep(price: PriceOverride) -> Deployment:
    return Deployment(name="gpt", model="some-model", provider="openai", api_base="http://up/v1", price=price)


DEPS = (dep(FULL), dep(PLAIN))


def call(start: float, rnd: random.Random) -> dict:
    rec = CallRecord(id=new_record_id(start), deployment=rnd.choice(DEPS), model="gpt", call_type="chat", start=start)
    latency = rnd.lognormvariate(5, 1)
    rec.end = start + latency / 1000
    rec.latency_ms = latency
    rec.ttft_ms = latency / 2
    rec.retries = rnd.choice((0, 0, 0, 1, 2))
    rec.status = "error" if rnd.random() < (0.4 if rec.retries else 0.1) else "success"
    rec.http_status = 200 if rec.status == "success" else rnd.choice((429, 500, 502))
    rec.cache_hit = rec.status == "success" and rnd.random() < 0.15
    prompt = rnd.randint(1, 4000)
    cached = rnd.choice((0, rnd.randint(0, prompt)))
    write = rnd.choice((0, 0, rnd.randint(0, prompt - cached)))
    write_1h = rnd.choice((0, 0, 0, rnd.randint(0, prompt - cached - write)))
    completion = rnd.randint(0, 800)
    reasoning = rnd.choice((0, rnd.randint(0, completion)))
    rec.usage = Usage(
        prompt, completion, prompt + completion, cached, reasoning, write, True, cache_write_1h_tokens=write_1h
    )
    return finish(rec, PRICER)


def traffic(seed: int, start: datetime, days: float, n: int, dense_end: float | None = None) -> list[dict]:
    rnd = random.Random(seed)
    t0 = start.timestamp()
    rows = [call(t0 + rnd.uniform(0, days * 86400), rnd) for _ in range(n)]
    if dense_end is not None:
        rows += [call(dense_end - rnd.uniform(0, 3600), rnd) for _ in range(n // 5)]
    return rows


# -- the figures, written out again from the raw rows (exact decimals of the stored breakdown) --
PICO = Decimal(10) ** 12
GROUPS = {"input": "input", "cached_input": "cached_input", "cache_write": "cache_write",
          "cache_write_1h": "cache_write", "output": "output", "reasoning": "reasoning"}  # fmt: skip


def lines(r: dict) -> list[dict]:
    import json

    return json.loads(r["cost_breakdown"])


def dec(x: float) -> Decimal:
    return Decimal(repr(x))


def whole(x: Decimal) -> int:
    assert x == x.to_integral_value(), x  # every figure is a whole number of pico-dollars
    return int(x)


def raw_figures(rows: list[dict]) -> dict[str, int]:
    out = dict.fromkeys(
        ("requests", "spend", "prompt", "cached", "writes", "cached_saved", "hits", "hit_saved", "retried",
         "rescued", "attempts", "completion", "reasoning_tokens", *set(GROUPS.values())),
        0,
    )  # fmt: skip
    for r in rows:
        out["requests"] += 1
        out["spend"] += r["spend_pusd"]
        if not r["cache_hit"]:  # provider caching: the input sent upstream
            out["prompt"] += r["prompt_tokens"]
            out["cached"] += r["cached_tokens"]
        out["completion"] += r["completion_tokens"]
        out["reasoning_tokens"] += r["reasoning_tokens"]
        by = {x["component"]: x for x in lines(r)}
        for x in by.values():
            out[GROUPS[x["component"]]] += whole(dec(x["cost"]) * PICO)
            if x["component"].startswith("cache_write") and not r["cache_hit"]:
                out["writes"] += x["tokens"]
        if r["cache_hit"]:
            out["hits"] += 1
            out["hit_saved"] += sum(whole(x["tokens"] * dec(x["usd_per_million"]) * 1_000_000) for x in by.values())
        elif "cached_input" in by:
            c = by["cached_input"]
            diff = dec(by["input"]["usd_per_million"]) - dec(c["usd_per_million"])
            out["cached_saved"] += whole(c["tokens"] * diff * 1_000_000)
        if r["retries"]:
            out["retried"] += 1
            out["attempts"] += r["retries"]
            out["rescued"] += r["status"] == "success"
    return out


def pusd(usd: float) -> int:
    return round(usd * 1e12)


def check_bucket(which: str, b: dict, want: dict[str, int]) -> None:
    assert b["requests"] == want["requests"], b
    if which == "costs":
        assert pusd(b["spend"]) == want["spend"]
        parts = {c: pusd(b[c]) for c in panels.COMPONENTS}
        assert parts == {c: want[c] for c in panels.COMPONENTS}
        assert sum(parts.values()) == want["spend"]  # the stack adds up to the spend
    elif which == "cache":
        assert (b["prompt_tokens"], b["cached_tokens"], b["cache_write_tokens"]) == (
            want["prompt"], want["cached"], want["writes"])  # fmt: skip
        assert b["cached_share"] == (pytest.approx(want["cached"] / want["prompt"]) if want["prompt"] else None)
        assert pusd(b["cached_saved"]) == want["cached_saved"]
        assert b["cache_hits"] == want["hits"]
        assert b["cache_hit_share"] == (pytest.approx(want["hits"] / want["requests"]) if want["requests"] else None)
        assert pusd(b["cache_hit_saved"]) == want["hit_saved"]
        assert pusd(b["saved"]) == want["hit_saved"] + want["cached_saved"]
    elif which == "retries":
        assert (b["retried"], b["rescued"], b["retry_attempts"]) == (want["retried"], want["rescued"], want["attempts"])
        assert b["failed_after_retries"] == want["retried"] - want["rescued"]
        assert b["rescued_share"] == (pytest.approx(want["rescued"] / want["retried"]) if want["retried"] else None)
    else:
        assert (b["completion_tokens"], b["reasoning_tokens"]) == (want["completion"], want["reasoning_tokens"])
        share = b["reasoning_share"]
        assert share == (pytest.approx(want["reasoning_tokens"] / want["completion"]) if want["completion"] else None)


def check_panels(db: Database, rows: list[dict], window: Window, tag: str | None = None) -> set[int]:
    sizes = set()
    for which in ("costs", "cache", "retries", "reasoning"):
        got = panels.panel(db, "gpt", window, which, tag)
        size = got["bucket_seconds"] * 1_000_000
        sizes.add(got["bucket_seconds"])
        assert got["buckets"]
        covered: list[dict] = []
        for b in got["buckets"]:
            start = int(datetime.fromisoformat(b["start"].replace("Z", "+00:00")).timestamp() * 1e6)
            inside = in_window(rows, start, min(start + size, window.end_us))
            covered += inside
            check_bucket(which, b, raw_figures(inside))
        check_bucket(which, got["totals"], raw_figures(covered))
    return sizes


@pytest.fixture
def mixed(db: Database) -> list[dict]:
    end = datetime(2026, 3, 11, 0, 0, 0, tzinfo=NY).timestamp()
    rows = traffic(41, datetime(2026, 3, 5, tzinfo=NY), 6, 2500, dense_end=end)
    store(db, rows)
    return rows


def test_panels_equal_the_raw_rows_at_every_resolution(db: Database, mixed: list[dict]) -> None:
    want = raw_figures(mixed)  # the data exercises every figure
    assert all(want[k] > 0 for k in want), want
    end_us = int(datetime(2026, 3, 11, 0, 0, 0, tzinfo=NY).timestamp() * 1e6) + 1
    sizes: set[int] = set()
    for window in windows_across_dst(end_us):
        sizes |= check_panels(db, mixed, window)
    assert sizes == {60, 900, 3600, 21600, 86400}
    # The cost split adds up to the cards' spend over whole days.
    window = parse_window(start="2026-03-06T00:00:00", end="2026-03-10T00:00:00", tz="America/New_York")
    got = panels.panel(db, "gpt", window, "costs")
    assert pusd(got["totals"]["spend"]) == pusd(summary_q.summary(db, "gpt", window)["spend"])


def test_a_tag_panel_is_its_rows(db: Database) -> None:
    rows = traffic(43, datetime(2026, 3, 8, 1, 0, tzinfo=NY), 0.2, 400)
    for i, r in enumerate(rows):
        r["tags"] = '["t1"]' if i % 3 else None
    for r in rows:
        if r["tags"]:
            r["metadata"] = '{"tags": ["t1"]}'
    store(db, rows)
    window = parse_window(start="2026-03-08T00:00:00", end="2026-03-09T00:00:00", tz="America/New_York")
    tagged = [r for r in rows if r["tags"]]
    check_panels(db, tagged, window, tag="t1")


def rollup_tables(db: Database) -> dict[str, list[tuple]]:
    return {
        res.table: db.fetchall(
            f"SELECT deployment, bucket_us, {', '.join(rollups.SUM_COLUMNS)} FROM {res.table} "
            "ORDER BY deployment, bucket_us"
        )
        for res in rollups.RESOLUTIONS
    }


def test_the_0018_backfill_equals_what_the_writer_sums(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database from before 0018 with records: 0018 adds the sums and fills them from the
    records (in SQL, without today's code) exactly as the writer fills them."""
    from modelmeter.storage import migration_0018, migrations, panel_sums

    rows = traffic(47, datetime(2026, 3, 7, tzinfo=NY), 3, 1500)
    store(db, rows)
    written = rollup_tables(db)
    assert any(r[-1] for r in written["rollup_hour"])  # (retry attempts: the data has them)
    with db.transaction() as tx:  # back to the layout before 0018 (the day table, 0022, left as it is)
        for res in (rollups.MINUTE, rollups.QUARTER, rollups.HOUR):
            for col in migration_0018._COLUMNS_0018:
                tx.execute(f"ALTER TABLE {res.table} DROP COLUMN {col}")
        tx.execute("DELETE FROM schema_migrations WHERE name = '0018_panel_sums'")

    def trap(*_: object, **__: object) -> None:
        raise AssertionError("the migration called today's application code")

    monkeypatch.setattr(panel_sums, "add", trap)
    assert migrations.migrate(db) == ["0018_panel_sums"]
    monkeypatch.undo()
    assert rollup_tables(db) == written
    window = parse_window(start="2026-03-07T00:00:00", end="2026-03-10T00:00:00", tz="America/New_York")
    check_panels(db, rows, window)


def test_a_batch_summed_a_column_at_a_time_equals_row_by_row() -> None:
    """The writer sums a bucket's rows a column at a time (``rollups.accumulate_many``): the same
    sums as ``accumulate`` row by row (the readers' way), the float sums to the last bit."""
    rows = traffic(11, datetime(2026, 3, 1, 12, 0), 1, 800)
    for i, r in enumerate(rows):
        if i % 7 == 0:
            r["ttft_ms"] = None  # no first token (a failed call)
        if i % 11 == 0:
            r["cost_breakdown"] = "[]"
    by_row = rollups.empty_sums()
    for r in rows:
        rollups.accumulate(by_row, r)
    by_column = rollups.empty_sums()
    latency, ttft = rollups.accumulate_many(by_column, rows)
    assert by_column == by_row
    assert latency == [r["latency_ms"] for r in rows]
    assert ttft == [r["ttft_ms"] for r in rows if r["ttft_ms"] is not None]
    # the mix reached every kind of figure
    for col in ("retried", "rescued", "cache_hits", "err_rate_limited", "err_upstream", "cost_cache_write_pusd"):
        assert by_row[col] > 0, col
