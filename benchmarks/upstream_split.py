"""The Usage tab's split by upstream at scale: the raw scan it did before 0016 against the rollups.

    python benchmarks/upstream_split.py --database sqlite:////tmp/mm-split.db --records 1000000
    python benchmarks/upstream_split.py --database postgresql://postgres@127.0.0.1:5432/mm_split

Fills (once, in time order) a database with routed calls over 7 days: one deployment with three upstreams (weights
5:3:2, ~6% answered after a fallback, ~2% answered by none) and, with ``--plain-share``, calls to a
plain deployment. Then, in one run (so machine load hits both alike): the split of 7 days, 24 hours
and 30 days the old way (every routed record of the window, grouped in SQL) and from the rollups,
each first call and the median of 7; checks that both give the same figures; times the migration's
backfill (the tables dropped and 0016 applied again); and the batch writer's CPU per record with
and without the upstream rollups, for routed and for plain records.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from modelmeter.config import Deployment
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import CallRecord, finish, new_record_id
from modelmeter.metering.usage import Usage
from modelmeter.routing.attempt import Attempt
from modelmeter.storage import migrations, upstream_rollups
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from modelmeter.units import PICO
from modelmeter.usage import upstreams as upstreams_q
from modelmeter.usage.window import parse_window

ROUTED = Deployment.from_mapping(
    {
        "name": "routed",
        "model": "gpt-4o-mini",
        "upstreams": [
            {"name": "openai", "api_base": "https://api.openai.com/v1", "weight": 5},
            {"name": "azure", "api_base": "https://example.openai.azure.com/v1", "weight": 3},
            {"name": "vllm", "api_base": "http://127.0.0.1:8000/v1", "weight": 2},
        ],
    }
)
PLAIN = Deployment(name="plain", model="gpt-4o-mini", provider="openai", api_base="https://api.openai.com/v1")
LABELS = ("openai", "azure", "vllm")
DAYS = 7

# The split before 0016 (usage/upstreams.py then): every routed record of the window.
OLD_SQL = (
    "SELECT served_by, COUNT(*), SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), SUM(latency_ms), "
    "SUM(spend_pusd), SUM(CASE WHEN status = 'success' AND retries > 0 THEN 1 ELSE 0 END) "
    "FROM records WHERE deployment = :d AND start_us >= :s AND start_us < :e AND attempts IS NOT NULL "
    "GROUP BY served_by ORDER BY COUNT(*) DESC"
)


def old_split(db: Database, window: Any) -> dict[str, Any]:
    rows = db.fetchall(OLD_SQL, {"d": "routed", "s": window.start_us, "e": window.end_us})
    data = [
        {
            "upstream": served_by,
            "requests": int(n),
            "succeeded": int(ok or 0),
            "avg_latency_ms": round(float(latency or 0) / n, 3) if n else None,
            "spend": int(spend or 0) / PICO,
            "rescued": int(rescued or 0),
        }
        for served_by, n, ok, latency, spend, rescued in rows
    ]
    return {"data": data, "rescued": sum(d["rescued"] for d in data)}


def synthetic(rnd: random.Random, t: float, plain: bool) -> CallRecord:
    dep = PLAIN if plain else ROUTED
    rec = CallRecord(id=new_record_id(t), deployment=dep, model=dep.name, call_type="chat", start=t)
    latency = rnd.lognormvariate(6.5, 0.7)
    rec.end, rec.latency_ms, rec.ttft_ms, rec.overhead_ms = t + latency / 1000, latency, latency * 0.3, 0.3
    rec.request_id = f"chatcmpl-{rec.id[-16:]}"
    prompt, completion = int(rnd.lognormvariate(6, 1)), int(rnd.lognormvariate(5, 0.8))
    rec.usage = Usage(prompt, completion, prompt + completion, reported=True)
    if plain:
        return rec
    first = rnd.choices(LABELS, (5, 3, 2))[0]
    attempts = [Attempt(first, 0.0, 200, None, latency, True)]
    roll = rnd.random()
    if roll < 0.02:  # none answered
        attempts = [Attempt(u, 0.0, 503, "HTTP 503", 5.0) for u in LABELS]
        rec.status, rec.http_status, rec.error, rec.usage = "error", 503, "no upstream", Usage(reported=True)
        rec.served_by = None
    elif roll < 0.08:  # rescued by a fallback
        second = rnd.choice([u for u in LABELS if u != first])
        attempts = [Attempt(first, 0.0, 429, "HTTP 429", 3.0), Attempt(second, 0.0, 200, None, latency, True)]
        rec.served_by = second
    else:
        rec.served_by = first
    rec.attempts, rec.retries = attempts, len(attempts) - 1
    return rec


def fill(db: Database, n: int, plain_share: float, batch: int = 2000) -> float:
    """In time order, as a gateway's records arrive (each batch touches a few buckets)."""
    rnd = random.Random(1)
    pricer = Pricer()
    start = time.time() - DAYS * 86400
    step = DAYS * 86400 / n
    t0 = time.perf_counter()
    done = 0
    while done < n:
        k = min(batch, n - done)
        times = [start + (done + i + rnd.random()) * step for i in range(k)]
        recs = [synthetic(rnd, t, rnd.random() < plain_share) for t in times]
        insert_rows(db, [finish(r, pricer) for r in recs])
        done += k
        if done % 200_000 < batch:
            print(f"  filled {done:,} ({done / (time.perf_counter() - t0):,.0f} rows/s)", flush=True)
    return n / (time.perf_counter() - t0)


def timed(fn: Callable[[], Any], repeat: int = 7) -> tuple[float, float]:
    """(first call ms, median of ``repeat`` more)."""
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return first, statistics.median(times)


def same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Counts and spend equal; the average latency equal to the old float average's 3 decimals
    (the old one summed floats, the new one whole microseconds) within 0.001 ms."""
    a = sorted(old["data"], key=lambda d: d["upstream"] or "")
    b = sorted(new["data"], key=lambda d: d["upstream"] or "")
    keys = ("upstream", "requests", "succeeded", "rescued")
    return (
        [[d[k] for k in keys] for d in a] == [[d[k] for k in keys] for d in b]
        and all(round(x["spend"] * PICO) == round(y["spend"] * PICO) for x, y in zip(a, b, strict=True))
        and all(abs(x["avg_latency_ms"] - y["avg_latency_ms"]) <= 0.0011 for x, y in zip(a, b, strict=True))
    )


def backfill_seconds(db: Database) -> float:
    with db.transaction() as tx:
        for res in upstream_rollups.UPSTREAM_RESOLUTIONS:
            tx.execute(f"DROP TABLE {upstream_rollups.table(res)}")
        tx.execute("DELETE FROM schema_migrations WHERE name = '0016_upstream_rollups'")
    t0 = time.perf_counter()
    assert migrations.migrate(db) == ["0016_upstream_rollups"]
    return time.perf_counter() - t0


def scratch_rows(seed: int, plain: bool, n: int) -> list[Any]:
    """Rows of the last minute under a deployment name of their own: written with the upstream
    rollups switched off (or rollups without records), they must not touch the split measured."""
    rnd = random.Random(seed)
    pricer = Pricer()
    now = time.time()
    rows = [finish(synthetic(rnd, now - 60 + i * 60 / n, plain), pricer) for i in range(n)]
    for r in rows:
        r["deployment"] = "writer-bench"
    return rows


def writer_us(db: Database, plain: bool, with_rollups: bool, n: int = 40_000, batch: int = 2000) -> float:
    """CPU µs per record of insert_rows (this thread), records of the last minute, in batches."""
    rows = scratch_rows(5 + plain, plain, n)
    keep = upstream_rollups.add_rows
    if not with_rollups:
        upstream_rollups.add_rows = lambda *a, **k: None  # type: ignore[assignment]
    try:
        t0 = time.process_time()
        for i in range(0, n, batch):
            insert_rows(db, rows[i : i + batch])
        return (time.process_time() - t0) / n * 1e6
    finally:
        upstream_rollups.add_rows = keep  # type: ignore[assignment]


def add_rows_us(db: Database, plain: bool, n: int = 20_000, batch: int = 2000) -> float:
    """CPU µs per record of ``upstream_rollups.add_rows`` alone (best of 5; each batch its own
    transaction), i.e. what the upstream rollups add to the writer."""
    rows = scratch_rows(7 + plain, plain, n)
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for i in range(0, n, batch):
            with db.transaction() as tx:
                upstream_rollups.add_rows(db, tx, rows[i : i + batch])
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default="sqlite:////tmp/mm-split.db")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--plain-share", type=float, default=0.0, help="share of calls to a plain deployment")
    ap.add_argument("--no-writer", action="store_true", help="skip the writer's CPU comparison")
    args = ap.parse_args()
    db = Database(args.database)
    migrations.migrate(db)
    have = int(db.fetchone("SELECT COUNT(*) FROM records")[0])
    if have < args.records:
        print(f"filling {args.records - have:,} records over {DAYS} days ...", flush=True)
        print(f"  {fill(db, args.records - have, args.plain_share):,.0f} records/s")
    if db.dialect == "postgresql":
        db.execute("ANALYZE")
    total = int(db.fetchone("SELECT COUNT(*) FROM records")[0])
    routed = int(db.fetchone("SELECT COUNT(*) FROM records WHERE attempts IS NOT NULL")[0])
    print(f"\n{total:,} records ({routed:,} routed), {db.dialect}; first call and median of 7")
    print(f"{'split by upstream':<22}{'raw scan first':>16}{'median':>10}{'rollups first':>16}{'median':>10}  same")
    for name in ("7d", "24h", "30d"):
        window = parse_window(name)
        old = timed(lambda w=window: old_split(db, w))  # type: ignore[misc]
        new = timed(lambda w=window: upstreams_q.split(db, "routed", w))  # type: ignore[misc]
        ok = same(old_split(db, window), upstreams_q.split(db, "routed", window))
        print(f"{name:<22}{old[0]:>16.1f}{old[1]:>10.1f}{new[0]:>16.2f}{new[1]:>10.2f}  {'yes' if ok else 'NO'}")
    print(f"\nmigration 0016 backfill (both tables from {routed:,} routed records): {backfill_seconds(db):.1f} s")
    if not args.no_writer:
        print("\nwriter CPU per record (insert_rows, 40,000 records in batches of 2,000; two rounds):")
        for plain in (False, True):
            for _ in range(2):
                without = writer_us(db, plain, False)
                with_ = writer_us(db, plain, True)
                kind = "plain " if plain else "routed"
                print(f"  {kind}: {without:6.1f} µs without upstream rollups, {with_:6.1f} µs with")
        for plain in (False, True):
            kind = "plain " if plain else "routed"
            print(f"  {kind}: upstream_rollups.add_rows alone {add_rows_us(db, plain):.2f} µs a record (best of 5)")


if __name__ == "__main__":
    main()
