"""Storage against both databases: migrations from empty, inserts, keyset pages, summaries."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from modelmeter.config import Deployment
from modelmeter.metering.pricing import PriceOverride, Pricer
from modelmeter.metering.record import CallRecord, finish, new_record_id
from modelmeter.metering.usage import Usage
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import MIGRATIONS, applied, migrate, pending
from modelmeter.storage.records import insert_rows
from modelmeter.usage import records as records_q
from modelmeter.usage import summary as summary_q
from modelmeter.usage.window import parse_window

DEP = Deployment(
    name="gpt",
    model="gpt-4o-mini",
    provider="openai",
    api_base="http://up/v1",
    price=PriceOverride(input=Decimal("0.15"), output=Decimal("0.60")),
)
PRICER = Pricer()


def make_row(
    start: float,
    *,
    status: str = "success",
    latency: float = 100.0,
    prompt: int = 10,
    completion: int = 5,
    tags: list[str] | None = None,
    dep: Deployment = DEP,
) -> dict:
    rec = CallRecord(
        id=new_record_id(start),
        deployment=dep,
        model=dep.name,
        call_type="chat",
        start=start,
        client_ip="10.1.2.3",
        request_body={"messages": []},
        response_body={"ok": True},
    )
    rec.end = start + latency / 1000
    rec.latency_ms = latency
    rec.ttft_ms = latency / 2
    rec.status = status
    rec.http_status = 200 if status == "success" else 500
    rec.usage = Usage(prompt, completion, prompt + completion, reported=True)
    rec.tags = tags or []
    rec.metadata = {"tags": rec.tags} if tags else None
    return finish(rec, PRICER)


def test_migrations_from_empty_are_idempotent(db_url: str) -> None:
    db = Database(db_url)
    assert pending(db) == [m.name for m in MIGRATIONS]
    assert migrate(db) == [m.name for m in MIGRATIONS]
    assert migrate(db) == []
    assert applied(db) == [m.name for m in MIGRATIONS]
    db.close()


def test_concurrent_migrations_apply_once(db_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(Database(db_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert applied(Database(db_url)) == [m.name for m in MIGRATIONS]


def test_insert_is_idempotent_and_reads_back(db: Database) -> None:
    now = time.time()
    rows = [make_row(now - i) for i in range(5)]
    insert_rows(db, rows)
    insert_rows(db, rows[:2])  # a retried batch must not duplicate
    assert db.fetchone("SELECT COUNT(*) FROM records")[0] == 5
    one = records_q.one(db, rows[0]["id"])
    assert one is not None
    assert one["client_ip"] == "10.1.2.0"
    assert one["request"] == {"messages": []}
    assert one["response"] == {"ok": True}
    assert one["spend"] == pytest.approx(10 * 0.15e-6 + 5 * 0.60e-6)
    assert sum(Decimal(repr(c["cost"])) for c in one["cost_breakdown"]) == Decimal(repr(one["spend"]))


def test_keyset_pages_cover_everything_newest_first(db: Database) -> None:
    now = time.time()
    # Several rows share a start time: ties are ordered by id.
    rows = [make_row(now - (i // 3), status="error" if i % 4 == 0 else "success") for i in range(47)]
    insert_rows(db, rows)
    window = parse_window("1h")
    seen: list[str] = []
    cursor = None
    while True:
        page = records_q.page(db, "gpt", window, limit=10, cursor=cursor)
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["start_us"], r["id"]), reverse=True)]
    assert seen == expected
    errors = records_q.page(db, "gpt", window, limit=200, status="error")["data"]
    assert {r["id"] for r in errors} == {r["id"] for r in rows if r["status"] == "error"}


def test_tag_filter_and_newer_than(db: Database) -> None:
    now = time.time()
    tagged = [make_row(now - 10 + i, tags=["bench:run1"]) for i in range(3)]
    other = [make_row(now - 5 + i) for i in range(3)]
    insert_rows(db, tagged + other)
    window = parse_window("1h")
    page = records_q.page(db, "gpt", window, tag="bench:run1")
    assert [r["id"] for r in page["data"]] == [r["id"] for r in reversed(tagged)]
    tagged = summary_q.summary(db, "gpt", window, tag="bench:run1")
    assert (tagged["requests"], tagged["prompt_tokens"], tagged["completion_tokens"]) == (3, 30, 15)
    series = summary_q.timeseries(db, "gpt", window, tag="bench:run1")
    assert sum(b["requests"] for b in series["buckets"]) == 3
    assert sum(b["total_tokens"] for b in series["buckets"]) == 45
    oldest = records_q.page(db, "gpt", window, limit=200)["data"][-1]
    newer = records_q.newer(db, "gpt", window, records_q.cursor_of(oldest))
    assert len(newer) == 5


def test_summary_matches_rows(db: Database) -> None:
    now = time.time()
    latencies = [float(x) for x in range(1, 101)]
    rows = [
        make_row(now - 60 + i * 0.1, latency=lat, status="error" if i < 10 else "success")
        for i, lat in enumerate(latencies)
    ]
    insert_rows(db, rows)
    s = summary_q.summary(db, "gpt", parse_window("1h"))
    assert s["requests"] == 100
    assert s["succeeded"] == 90
    assert s["failed"] == 10
    assert s["success_rate"] == 0.9
    assert s["prompt_tokens"] == 1000
    assert s["completion_tokens"] == 500
    # Percentiles come from the rollups' log histogram: within 1% of the exact nearest rank.
    assert s["p50_latency_ms"] == pytest.approx(50.0, rel=0.01)
    assert s["p95_latency_ms"] == pytest.approx(95.0, rel=0.01)
    assert s["p99_latency_ms"] == pytest.approx(99.0, rel=0.01)
    assert s["avg_latency_ms"] == pytest.approx(50.5)
    assert s["spend"] == pytest.approx(sum(r["spend_pusd"] for r in rows) / 1e12)
    ts = summary_q.timeseries(db, "gpt", parse_window("1h"))
    assert sum(b["requests"] for b in ts["buckets"]) == 100
    assert sum(b["errors"] for b in ts["buckets"]) == 10


def test_empty_window(db: Database) -> None:
    s = summary_q.summary(db, "nothing", parse_window("24h"))
    assert s["requests"] == 0
    assert s["success_rate"] is None
    assert s["p95_latency_ms"] is None
    assert records_q.page(db, "nothing", parse_window("24h")) == {"data": [], "next_cursor": None}
