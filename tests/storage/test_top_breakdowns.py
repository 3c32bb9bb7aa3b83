"""Breakdowns by API key, end user, tag and session (hourly top-N rollups with "others"): rows plus
others equal the window's totals exactly; listed rows equal the raw rows; the 0017 backfill."""

from __future__ import annotations

import dataclasses
import math
import random
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from modelmeter.storage import histogram, migrations, top_rollups, top_values, upstream_rollups
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from modelmeter.storage.top_values import TOP_N, HourList, rebalance, take_rows
from modelmeter.usage import summary as summary_q
from modelmeter.usage import top_breakdowns
from modelmeter.usage.window import Window

from .test_storage import DEP, make_row

HOUR_US = 3_600_000_000


@pytest.fixture(autouse=True)
def histograms_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows' histograms written with every batch (the server waits up to FLUSH_S): p95 checkable."""
    monkeypatch.setattr(top_values, "FLUSH_S", 0.0)


T0 = datetime(2026, 3, 5, 9, 0, tzinfo=UTC).timestamp()


def traffic(n: int, seed: int, hours: float = 6) -> list[dict]:
    """Skewed traffic: a few heavy keys/users/sessions and a long tail, more values than TOP_N."""
    rnd = random.Random(seed)
    rows = []
    for _ in range(n):
        r = make_row(
            T0 + rnd.uniform(0, hours * 3600),
            latency=rnd.lognormvariate(5, 1),
            status="error" if rnd.random() < 0.1 else "success",
            prompt=rnd.randint(1, 800),
            completion=rnd.randint(0, 300),
            tags=rnd.choice([[], ["a"], ["b", "a"], [f"t{rnd.randint(0, 90)}"]]),
        )
        heavy = rnd.random() < 0.5
        r["key_alias"] = f"k{rnd.randint(0, 5) if heavy else rnd.randint(6, 400)}" if rnd.random() < 0.9 else None
        user = f"u{rnd.randint(0, 3) if heavy else rnd.randint(4, 3000)}"
        meta = orjson.loads(r["metadata"]) if r["metadata"] else {}
        if rnd.random() < 0.8:
            meta["user"] = user
        r["metadata"] = orjson.dumps(meta).decode() if meta else None
        r["session_id"] = f"s{rnd.randint(0, 3) if heavy else rnd.randint(4, 2000)}" if rnd.random() < 0.7 else None
        rows.append(r)
    rows.sort(key=lambda r: r["start_us"])  # as a gateway's records arrive
    return rows


def store(db: Database, rows: list[dict], batch: int = 250) -> None:
    for i in range(0, len(rows), batch):
        insert_rows(db, rows[i : i + batch])


def values(r: dict, dim: str) -> list[str]:
    return [v for d, v in top_rollups.values_of(r) if d == dim]


def raw_sums(rows: list[dict], dim: str) -> dict[tuple[int, str], list]:
    """(hour, value) -> [requests, failed, total_tokens, spend_pusd, latencies] from the raw rows."""
    out: dict[tuple[int, str], list] = defaultdict(lambda: [0, 0, 0, 0, []])
    for r in rows:
        for v in values(r, dim):
            s = out[(r["start_us"] - r["start_us"] % HOUR_US, v)]
            s[0] += 1
            s[1] += r["status"] != "success"
            s[2] += r["total_tokens"]
            s[3] += r["spend_pusd"]
            s[4].append(r["latency_ms"])
    return out


def listed_hours(db: Database, dim: str) -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for value, bucket in db.fetchall(
        "SELECT value, bucket_us FROM rollup_top_hour WHERE dim = :d AND other = 0", {"d": dim}
    ):
        out[value].add(int(bucket))
    return out


def nearest_rank(xs: list[float], q: float) -> float:
    return sorted(xs)[max(math.ceil(q * len(xs)), 1) - 1]


# The values busy from the start of every hour (half the traffic, see ``traffic``): listed from their
# first request of each hour, so their rows are exact.
HEAVY = {f"k{i}" for i in range(6)} | {f"u{i}" for i in range(4)} | {f"s{i}" for i in range(4)} | {"a", "b", ""}


def check(db: Database, rows: list[dict], window: Window, by: str, exact_rows: bool = True) -> None:
    got = top_breakdowns.breakdown(db, "gpt", window, by, limit=20)
    a, b = top_breakdowns.hour_span(window)
    inside = [r for r in rows if a <= r["start_us"] < b]
    raw = raw_sums(inside, by)
    # Totals: rows + others, exactly; equal to the raw pairs (and, but for tags, to the cards).
    parts = [*got["rows"], got["others"]] if got["others"] else got["rows"]
    for col in ("requests", "failed", "total_tokens", "prompt_tokens", "completion_tokens"):
        assert sum(p[col] for p in parts) == got["total"][col]
    assert sum(round(p["spend"] * 1e12) for p in parts) == round(got["total"]["spend"] * 1e12)
    assert got["total"]["requests"] == sum(s[0] for s in raw.values()) > 0
    assert got["total"]["failed"] == sum(s[1] for s in raw.values())
    assert round(got["total"]["spend"] * 1e12) == sum(s[3] for s in raw.values())
    if by != "tag":
        cards = summary_q.summary(db, "gpt", Window(a, b, window.tz))
        assert got["total"]["requests"] == cards["requests"] == len(inside)
        assert got["total"]["total_tokens"] == cards["total_tokens"]
    assert got["others"] is not None  # more values than the list holds: the test means something
    # Each shown value: the raw figures of the hours it was listed in; exact if always listed.
    hours = listed_hours(db, by)
    always = 0
    for row in got["rows"]:
        mine = {h for (h, v) in raw if v == row["value"]}
        kept = hours[row["value"]] & mine
        want = [sum(raw[(h, row["value"])][i] for h in kept) for i in range(4)]
        have = [row["requests"], row["failed"], row["total_tokens"], round(row["spend"] * 1e12)]
        # A row never counts more than the value's requests in the hours it was listed.
        assert all(x <= y for x, y in zip(have, want, strict=True)) and have[0] > 0
        if not exact_rows or row["value"] not in HEAVY:
            continue
        assert have == want
        if kept == mine:
            always += 1
            lat = [x for h in mine for x in raw[(h, row["value"])][4]]
            assert row["p95_ms"] == pytest.approx(nearest_rank(lat, 0.95), rel=0.026)
    assert always > 0 or not exact_rows
    spends = [r["spend"] for r in got["rows"]]
    assert spends == sorted(spends, reverse=True)


@pytest.mark.parametrize("by", top_rollups.TOP_DIMENSIONS)
def test_breakdowns_add_up_and_listed_rows_equal_the_raw_rows(db: Database, by: str) -> None:
    rows = traffic(4000, 3)
    store(db, rows)
    for window in (
        Window(int(T0 * 1e6), int((T0 + 6 * 3600) * 1e6), UTC),
        Window(int((T0 + 1234) * 1e6), int((T0 + 4 * 3600 + 17) * 1e6), UTC),  # partial hours: whole ones
    ):
        check(db, rows, window, by)
        # Every hour has more values than its list: "others" holds the rest of that hour.
    n = db.fetchone(
        "SELECT MAX(c) FROM (SELECT COUNT(*) AS c FROM rollup_top_hour WHERE dim = :d AND other = 0 "
        "GROUP BY bucket_us) AS x",
        {"d": by},
    )[0]
    assert n <= 2 * TOP_N  # the top N by requests and the top N by spend


def test_totals_stay_exact_when_lists_are_forgotten(db: Database) -> None:
    """As after a restart or with several writers: lists reloaded from the database mid-hour."""
    rows = traffic(3000, 8, hours=3)
    for i in range(0, len(rows), 200):
        insert_rows(db, rows[i : i + 200])
        if i % 600 == 0:
            top_rollups.forget(db)
    window = Window(int(T0 * 1e6), int((T0 + 3 * 3600) * 1e6), UTC)
    for by in top_rollups.TOP_DIMENSIONS:
        check(db, rows, window, by, exact_rows=False)


def test_upgrade_to_0017_fills_the_rollups_from_the_records(db: Database) -> None:
    rows = traffic(2500, 5, hours=4)
    store(db, rows)
    with db.transaction() as tx:
        tx.execute("DROP TABLE rollup_top_hour")
        tx.execute("DELETE FROM schema_migrations WHERE name = '0017_topn_breakdowns'")
    top_rollups.forget(db)
    assert migrations.migrate(db) == ["0017_topn_breakdowns"]
    window = Window(int(T0 * 1e6), int((T0 + 4 * 3600) * 1e6), UTC)
    for by in top_rollups.TOP_DIMENSIONS:
        check(db, rows, window, by)
    more = traffic(500, 6, hours=4)  # the writer carries on from the backfilled lists
    store(db, more)
    for by in top_rollups.TOP_DIMENSIONS:
        check(db, rows + more, window, by, exact_rows=False)


def test_the_0017_backfill_pages_across_deployments(db: Database) -> None:
    """The backfill reads the records 20,000 at a time in (deployment, start_us, id) order: a page
    that ends with a deployment's last record goes on with the next deployment, none skipped or
    read twice (every key-dimension row, "others" included, adds up to the records)."""
    other = dataclasses.replace(DEP, name="zz-other")
    rows = [make_row(T0 + i * 0.5) for i in range(20_000)] + [make_row(T0 + i, dep=other) for i in range(300)]
    for i, r in enumerate(rows):
        r["key_alias"] = f"k{i % 120}"  # more keys than TOP_N: some go to "others"
    store(db, rows, batch=2000)
    with db.transaction() as tx:
        tx.execute("DROP TABLE rollup_top_hour")
        tx.execute("DELETE FROM schema_migrations WHERE name = '0017_topn_breakdowns'")
    top_rollups.forget(db)
    assert migrations.migrate(db) == ["0017_topn_breakdowns"]
    got = dict(
        db.fetchall(f"SELECT deployment, SUM(requests) FROM {top_rollups.TABLE} WHERE dim = 'key' GROUP BY deployment")
    )
    assert {d: int(n) for d, n in got.items()} == {DEP.name: 20_000, "zz-other": 300}


def test_a_busier_newcomer_takes_the_smallest_place() -> None:
    hour = HourList(listed={})
    assert rebalance(hour, ["a", "b", "a", "c"], top_n=2) == []
    assert set(hour.listed) == {"a", "b"}  # a: 2, then b and c tie at 1 (b first by name)
    hour.listed["b"][0] = 1  # b's part of the batch
    assert set(take_rows(hour)) == {"b"} and hour.listed["b"][0] == 0
    assert rebalance(hour, ["c", "c"], top_n=2) == ["b"]  # c: 3 requests in all, b: 1
    assert set(hour.listed) == {"a", "c"}
    assert rebalance(hour, ["b"], top_n=2) == []  # b: 2, not more than a's 2


def test_a_costlier_newcomer_takes_the_smallest_place_by_spend() -> None:
    hour = HourList(listed={})
    assert rebalance(hour, ["a", "a", "b"], [1, 1, 1], top_n=1) == []
    assert hour.by_requests == {"a"} and hour.by_spend == {"a"} and set(hour.listed) == {"a"}
    assert rebalance(hour, ["c"], [50], top_n=1) == []  # c: 1 request, the most spend
    assert hour.by_requests == {"a"} and hour.by_spend == {"c"} and set(hour.listed) == {"a", "c"}
    assert rebalance(hour, ["d", "d", "d"], [0, 0, 0], top_n=1) == ["a"]  # d outranks a by requests
    assert set(hour.listed) == {"c", "d"}
    assert rebalance(hour, ["e"], [0], top_n=1) == []  # free calls never enter the spend list
    assert hour.by_spend == {"c"}


def big_spender_traffic(n: int, seed: int) -> list[dict]:
    """Thousands of cheap, busy users (8 requests each on average) and one who sends a few very
    long prompts: by requests they rank last, by spend first."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        big = i % 400 == 7
        r = make_row(T0 + rnd.uniform(0, 3600), prompt=200_000 if big else rnd.randint(1, 20), completion=5)
        r["metadata"] = orjson.dumps({"user": "whale" if big else f"u{rnd.randint(0, n // 8)}"}).decode()
        r["key_alias"] = "whale-key" if big else f"k{rnd.randint(0, n // 8)}"
        rows.append(r)
    rows.sort(key=lambda r: r["start_us"])
    return rows


@pytest.mark.parametrize("by", ["user", "key"])
def test_a_user_with_few_costly_requests_tops_the_spend_breakdown(db: Database, by: str) -> None:
    rows = big_spender_traffic(8000, 21)
    store(db, rows)
    whale = "whale" if by == "user" else "whale-key"
    window = Window(int(T0 * 1e6), int((T0 + 3600) * 1e6), UTC)
    got = top_breakdowns.breakdown(db, "gpt", window, by, limit=20)
    mine = [r for r in rows if whale in values(r, by)]
    assert 0 < len(mine) < 30  # fewer requests than many cheap users: by requests alone, "others"
    top = got["rows"][0]
    assert top["value"] == whale
    assert top["requests"] == len(mine)  # exact: listed from its first (costly) request on
    assert round(top["spend"] * 1e12) == sum(r["spend_pusd"] for r in mine)
    assert top["total_tokens"] == sum(r["total_tokens"] for r in mine)
    # Rows plus others still equal the hour's totals exactly.
    parts = [*got["rows"], got["others"]]
    assert sum(p["requests"] for p in parts) == got["total"]["requests"] == len(rows)
    assert sum(round(p["spend"] * 1e12) for p in parts) == sum(r["spend_pusd"] for r in rows)


def test_row_histograms_are_written_at_most_every_flush_interval(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(top_values, "FLUSH_S", 3600.0)
    rows = traffic(600, 12, hours=0.5)
    store(db, rows[:500])
    window = Window(int(T0 * 1e6), int((T0 + 1800) * 1e6), UTC)
    got = top_breakdowns.breakdown(db, "gpt", window, "key")
    assert got["rows"] and all(r["p95_ms"] is None for r in got["rows"])  # sums now, histograms later
    top_rollups.lists_for(db).flushed -= 3600  # an hour on
    store(db, rows[500:])
    got = top_breakdowns.breakdown(db, "gpt", window, "key")
    heavy = [r for r in got["rows"] if r["value"] in HEAVY]
    assert heavy and all(r["p95_ms"] is not None for r in heavy)
    raw = raw_sums(rows, "key")
    for r in heavy:
        lat = [x for (h, v), s in raw.items() if v == r["value"] for x in s[4]]
        assert r["requests"] == len(lat)
        assert r["p95_ms"] == pytest.approx(nearest_rank(lat, 0.95), rel=0.026)


def test_the_log_filters_by_end_user(db: Database) -> None:
    """What a user row opens: the log of the requests whose body named that user."""
    from modelmeter.usage import records as records_q

    rows = traffic(400, 21, hours=1)
    store(db, rows)
    window = Window(int(T0 * 1e6), int((T0 + 3600) * 1e6), UTC)
    for user in ("u0", "u1"):
        want = sorted(r["id"] for r in rows if values(r, "user") == [user])
        got = records_q.page(db, "gpt", window, limit=200, end_user=user)["data"]
        assert want and sorted(r["id"] for r in got) == want
        assert all(r["metadata"]["user"] == user for r in got)


def whale_among_busy_users(seed: int) -> list[dict]:
    """Two hours: 10,000 cheap users (1-4 requests), 2 x TOP_N busy ones (12 requests an hour: more
    than the whale, so by requests alone it would be in "others") and a whale (3 calls an hour,
    each of 120,000 prompt tokens)."""
    rnd = random.Random(seed)
    rows = []

    def add(t: float, user: str, **kw: Any) -> None:
        r = make_row(t, **kw)
        r["metadata"] = orjson.dumps({"user": user}).decode()
        rows.append(r)

    for i in range(10_000):
        for _ in range(rnd.randint(1, 4)):
            add(T0 + rnd.uniform(0, 2 * 3600), f"u{i}", prompt=rnd.randint(1, 50), completion=rnd.randint(0, 20))
    for i in range(2 * TOP_N):
        for k in range(24):
            add(T0 + k * 300 + i, f"busy{i}", prompt=rnd.randint(1, 50), completion=rnd.randint(0, 20))
    for h in range(2):
        for k in range(3):
            add(T0 + h * 3600 + 600 + k * 900, "whale", prompt=120_000, completion=2_000, latency=9000.0)
    rows.sort(key=lambda r: r["start_us"])
    return rows


def test_few_very_expensive_requests_among_busy_users_get_an_exact_row(db: Database) -> None:
    rows = whale_among_busy_users(31)
    whale = [r for r in rows if values(r, "user") == ["whale"]]
    busier: dict[tuple[int, str], int] = defaultdict(int)
    for r in rows:
        busier[(r["start_us"] // HOUR_US, values(r, "user")[0])] += 1
    for h in {r["start_us"] // HOUR_US for r in whale}:  # the premise: not in any hour's top N by requests
        assert sum(n > busier[(h, "whale")] for (hh, _), n in busier.items() if hh == h) >= TOP_N
    store(db, rows, batch=500)
    window = Window(int(T0 * 1e6), int((T0 + 2 * 3600) * 1e6), UTC)
    got = top_breakdowns.breakdown(db, "gpt", window, "user", sort="spend", limit=10)
    top = got["rows"][0]
    assert top["value"] == "whale" and top["requests"] == len(whale) == 6
    assert round(top["spend"] * 1e12) == sum(r["spend_pusd"] for r in whale)
    assert top["prompt_tokens"] == sum(r["prompt_tokens"] for r in whale)
    assert top["total_tokens"] == sum(r["total_tokens"] for r in whale)
    assert top["p95_ms"] == pytest.approx(9000.0, rel=0.026)
    assert round(got["total"]["spend"] * 1e12) == sum(r["spend_pusd"] for r in rows)
    check(db, rows, window, "user", exact_rows=False)


def test_two_writers_and_a_rolled_back_batch_keep_totals_exact(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writer processes (each its own lists) take turns, one batch fails after the top-N step
    and is retried: rows plus "others" are the totals exactly, no row counts more than it should."""
    rows = whale_among_busy_users(32)
    other = Database(db_url)  # its own lists: another writer process
    real = upstream_rollups.add_rows
    failed = []

    def fail_once(*a: Any) -> None:
        if not failed:
            failed.append(1)
            raise RuntimeError("connection lost")
        real(*a)

    try:
        for n, i in enumerate(range(0, len(rows), 700)):
            writer = (db, other)[n % 2]
            if n == 7:
                monkeypatch.setattr(upstream_rollups, "add_rows", fail_once)
                with pytest.raises(RuntimeError):
                    insert_rows(writer, rows[i : i + 700])
                monkeypatch.setattr(upstream_rollups, "add_rows", real)
            insert_rows(writer, rows[i : i + 700])
        assert failed
        window = Window(int(T0 * 1e6), int((T0 + 2 * 3600) * 1e6), UTC)
        check(db, rows, window, "user", exact_rows=False)
        got = top_breakdowns.breakdown(db, "gpt", window, "user", sort="spend", limit=10)
        # Listed by each writer from the first call it saw: exact whichever wrote which.
        assert got["rows"][0]["value"] == "whale" and got["rows"][0]["requests"] == 6
    finally:
        other.close()


def test_reloaded_lists_stay_bounded_with_two_writers(db: Database, db_url: str) -> None:
    """A writer that reloads its lists (restart, rolled-back batch) while another writes: rows in
    neither of its lists are folded, so an hour keeps at most 2 x TOP_N rows per writer."""
    rows = traffic(9000, 3, hours=1)
    other = Database(db_url)
    try:
        for n, i in enumerate(range(0, len(rows), 200)):
            insert_rows((db, other, db)[n % 3], rows[i : i + 200])
            if n % 3 == 0:  # db reloads its lists for its next batch (the last one included)
                top_rollups.forget(db)
        # Each writer's lists hold at most 2 x TOP_N values (the reloading one's too) ...
        for writer in (db, other):
            hours = top_rollups.lists_for(writer).hours.values()
            assert max(len(h.listed) for dims in hours for h in dims.values()) <= 2 * TOP_N
        # ... and the table at most what the two writers list between them.
        most = db.fetchone(
            "SELECT MAX(c) FROM (SELECT COUNT(*) AS c FROM rollup_top_hour WHERE other = 0 "
            "GROUP BY dim, bucket_us) AS x"
        )[0]
        assert TOP_N < most <= 2 * 2 * TOP_N
        window = Window(int(T0 * 1e6), int((T0 + 3600) * 1e6), UTC)
        for by in top_rollups.TOP_DIMENSIONS:
            check(db, rows, window, by, exact_rows=False)
    finally:
        other.close()


def per_row_hours(db: Database, by: str, a: int, b: int) -> top_breakdowns._Hours:
    """The window's hours summed in Python row by row, every histogram merged (as before the
    breakdowns summed by value in SQL): the reference the SQL sums must equal."""
    out = top_breakdowns._Hours()
    n = len(top_rollups.SUMS)
    for other, value, *rest in db.fetchall(
        f"SELECT other, value, {', '.join(top_rollups.SUMS)}, latency_bins FROM rollup_top_hour "
        "WHERE deployment = 'gpt' AND dim = :d AND bucket_us >= :a AND bucket_us < :b",
        {"d": by, "a": a, "b": b},
    ):
        acc = out.others if other else out.sums.setdefault(value, [0] * n)
        for i in range(n):
            acc[i] += int(rest[i])
        if not other:
            histogram.merge(out.merged.setdefault(value, {}), histogram.decode(rest[n]))
    return out


@pytest.mark.parametrize("by", top_rollups.TOP_DIMENSIONS)
def test_sums_by_value_in_sql_equal_the_per_row_sums(db: Database, by: str) -> None:
    rows = traffic(3000, 17, hours=4)
    for i in range(0, len(rows), 300):  # reloaded lists now and then: demoted rows, empty rows with bins
        insert_rows(db, rows[i : i + 300])
        if i % 900 == 0:
            top_rollups.forget(db)
    cache = top_breakdowns.TopCache()
    for window in (
        Window(int(T0 * 1e6), int((T0 + 4 * 3600) * 1e6), UTC),
        Window(int((T0 + 4000) * 1e6), int((T0 + 2 * 3600) * 1e6), UTC),
    ):
        a, b = top_breakdowns.hour_span(window)
        want_hours = per_row_hours(db, by, a, b)
        assert len(want_hours.sums) > 20 and any(want_hours.others)  # more values than the limits below
        for sort in top_breakdowns.SORTS:
            for limit in (1, 7, 20, 500):
                want = top_breakdowns._answer(want_hours, sort, limit)
                for c in (None, cache, cache):  # uncached, then read into the cache, then from it
                    got = top_breakdowns.breakdown(db, "gpt", window, by, sort=sort, limit=limit, cache=c)
                    assert {k: got[k] for k in ("rows", "others", "total")} == want, (sort, limit)
                    assert sum(r["p95_ms"] is not None for r in got["rows"]) > 0


def test_a_cached_breakdown_sees_the_records_written_after_it(db: Database) -> None:
    """The first read remembers its own request count (no count query before it): a refresh after
    more records reads them, one with none new answers from the cache."""
    rows = traffic(2000, 23, hours=2)
    window = Window(int(T0 * 1e6), int((T0 + 2 * 3600) * 1e6), UTC)
    cache = top_breakdowns.TopCache()
    store(db, rows[:1000])
    first = top_breakdowns.breakdown(db, "gpt", window, "user", cache=cache)
    assert first == top_breakdowns.breakdown(db, "gpt", window, "user", cache=cache)
    store(db, rows[1000:])
    got = top_breakdowns.breakdown(db, "gpt", window, "user", cache=cache)
    assert got["total"]["requests"] == 2000 > first["total"]["requests"]
    assert got == top_breakdowns.breakdown(db, "gpt", window, "user")
