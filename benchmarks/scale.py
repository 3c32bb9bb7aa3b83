"""Scale benchmark: fill a database with synthetic records, then time the usage API's queries.

    python benchmarks/scale.py --records 1000000 --database sqlite:////tmp/mm-scale.db
    python benchmarks/scale.py --records 1000000 --database postgresql://postgres@127.0.0.1:5432/mm_scale

A realistic mix over 7 days: several deployments of different sizes, ~4% errors, 70% streamed, bodies
on 1 record in 20 (stored apart). It prints ingest rates (the batch writer, end to end from CallRecord)
and the median time of repeated calls for the summary, the timeseries, first and deep log pages with
and without a status filter, and one record with bodies; then checks p95 from rollups against exact.
Times are measured on the query functions the API handlers call (no HTTP), on one core.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from modelmeter.cli.serve import tune_gc
from modelmeter.config import Deployment, Settings
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import CallRecord, finish, new_record_id
from modelmeter.metering.usage import Usage
from modelmeter.recording.recorder import Recorder
from modelmeter.storage import migration_steps, partitions, slots, top_rollups
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.storage.records import insert_rows
from modelmeter.usage import breakdowns as breakdowns_q
from modelmeter.usage import fleet as fleet_q
from modelmeter.usage import insights as insights_q
from modelmeter.usage import records as records_q
from modelmeter.usage import summary as summary_q
from modelmeter.usage import top_breakdowns as top_q
from modelmeter.usage.rollup_reads import BinsCache, PercentileCache
from modelmeter.usage.window import parse_window

DEPLOYMENTS = [  # name, share of traffic
    (Deployment(name="gpt-4o-mini", model="gpt-4o-mini", provider="openai", api_base="https://api.openai.com/v1"), 0.5),
    (
        Deployment(
            name="claude-sonnet",
            model="claude-sonnet-4-5",
            provider="anthropic",
            api_base="https://api.anthropic.com/v1",
        ),
        0.25,
    ),
    (
        Deployment(
            name="llama-vllm",
            model="meta-llama/Llama-3.1-8B-Instruct",
            provider="vllm",
            api_base="http://10.0.0.5:8000/v1",
        ),
        0.2,
    ),
    (Deployment(name="smollm2-135m-instruct", model="smollm2-135m-instruct", provider="local"), 0.05),
]
DAYS = 7
KEYS, USERS, SESSIONS = 10_000, 100_000, 50_000  # distinct API keys, end users, agent sessions


def synthetic(rnd: random.Random, start: float, span: float) -> CallRecord:
    dep = rnd.choices([d for d, _ in DEPLOYMENTS], [w for _, w in DEPLOYMENTS])[0]
    t = start + rnd.random() * span
    error = rnd.random() < 0.04
    stream = rnd.random() < 0.7
    prompt = int(rnd.lognormvariate(6, 1))
    completion = 0 if error else int(rnd.lognormvariate(5, 0.8))
    latency = rnd.lognormvariate(6.5, 0.7) if not error else rnd.lognormvariate(4, 1)
    body = rnd.random() < 0.05
    rec = CallRecord(
        id=new_record_id(t),
        deployment=dep,
        model=dep.name,
        call_type="chat",
        start=t,
        stream=stream,
        client_ip=f"203.0.113.{rnd.randint(1, 254)}",
        request_body={"model": dep.name, "messages": [{"role": "user", "content": "x" * 400}]} if body else None,
        response_body={"choices": [{"message": {"content": "y" * 600}}]} if body else None,
    )
    rec.end = t + latency / 1000
    rec.latency_ms = latency
    rec.ttft_ms = latency * 0.3 if stream else latency
    rec.overhead_ms = 0.3
    rec.request_id = f"chatcmpl-{rec.id[-16:]}"
    if error:
        rec.status, rec.http_status, rec.error = "error", rnd.choice([429, 500, 502, 504]), "upstream error"
    rec.usage = Usage(
        prompt, completion, prompt + completion, cached_tokens=prompt // 4 if rnd.random() < 0.3 else 0, reported=True
    )
    tagged = rnd.random() < 0.01
    # Keys and users: a few heavy ones (a Zipf-like head) and a long tail over all of them.
    head = rnd.random() < 0.3
    rec.key_alias = f"key-{rnd.randint(0, 20) if head else rnd.randrange(KEYS)}"
    rec.metadata = {"user": f"user-{rnd.randint(0, 50) if head else rnd.randrange(USERS)}"}
    if tagged:
        rec.metadata["tags"] = ["bench:demo"]
    rec.tags = ["bench:demo"] if tagged else []
    rec.session_id = f"sess-{rnd.randrange(SESSIONS)}" if rnd.random() < 0.3 else None
    return rec


def fill(db: Database, n: int, seed: int = 1, batch: int = 2000) -> float:
    """Insert n finished rows directly (the fast way to build a big database); returns rows/s."""
    rnd = random.Random(seed)
    pricer = Pricer()
    now = time.time()
    start = now - DAYS * 86400
    t0 = time.perf_counter()
    done = 0
    # Records in random order over 7 days: each batch touches most hours, which the top-N writer
    # (made for records in time order) would read and write hour by hour; its rollups are built
    # from the rows at the end instead, as migration 0017 does.
    from modelmeter.storage import records as records_mod

    real = records_mod.top_rollups.add_rows
    records_mod.top_rollups.add_rows = lambda *a: None  # type: ignore[assignment]
    try:
        while done < n:
            k = min(batch, n - done)
            insert_rows(db, [finish(synthetic(rnd, start, DAYS * 86400), pricer) for _ in range(k)])
            done += k
            if done % 200_000 < batch:
                rate = done / (time.perf_counter() - t0)
                print(f"  filled {done:,} ({rate:,.0f} rows/s)", flush=True)
    finally:
        records_mod.top_rollups.add_rows = real  # type: ignore[assignment]
    with db.transaction() as tx:
        rebuild_top(db, tx)
    top_rollups.forget(db)
    return n / (time.perf_counter() - t0)


def rebuild_top(db: Database, tx: Any) -> None:
    """The hourly top-N lists, exact, from the rows (as migration 0017 fills them), and their day
    sums (as 0021 does)."""
    from modelmeter.storage import migration_0021, top_days  # (ingest_ab.py runs this file on older trees)

    tx.execute(f"DELETE FROM {top_rollups.TABLE}")
    tx.execute(f"DELETE FROM {top_days.TABLE}")
    migration_steps.backfill_top_0017(db, tx)
    migration_0021.backfill_0021(db, tx)


def multiply(db: Database, base: int, n: int) -> float:
    """Grow the database to n records quickly: time-shifted copies of the first ``base`` records
    (copied in SQL, in one transaction per copy), then the rollups rebuilt from the raw rows in SQL
    with the same bins as the writer. For building big databases only: the writer's own rate is
    measured by ingest_through_recorder."""
    from modelmeter.storage import migration_0018, panel_sums
    from modelmeter.storage.dim_rollups import DIM_RESOLUTIONS, DIM_SUMS, DIMENSIONS
    from modelmeter.storage.dim_rollups import table as dim_table
    from modelmeter.storage.histogram import BIN_FLOOR_MS, BIN_RATIO
    from modelmeter.storage.records import RECORD_COLUMNS
    from modelmeter.storage.rollups import ERROR_CLASS_SQL, ERROR_CLASSES, RESOLUTIONS, SUM_COLUMNS

    t0 = time.perf_counter()
    span = DAYS * 86_400_000_000
    w0 = int((time.time() - DAYS * 86400) * 1e6)
    shifted = f"{w0} + ((start_us - {w0} + :shift) % {span})"
    # Copies of the original rows (ids without a dash), named apart from earlier runs' copies.
    base = int(db.fetchone("SELECT COUNT(*) FROM records WHERE id NOT LIKE '%-%'")[0])
    have = int(db.fetchone("SELECT COUNT(*) FROM records")[0])
    run = os.urandom(3).hex()
    copies = -(-(n - have) // base)
    cols = ", ".join(RECORD_COLUMNS)
    picks = ", ".join(
        f"{c} || :suffix"
        if c in ("id", "request_id")
        else shifted
        if c == "start_us"
        else f"end_us - start_us + {shifted}"
        if c == "end_us"
        else c
        for c in RECORD_COLUMNS
    )
    for k in range(1, copies + 1):
        left = min(base, n - have - base * (k - 1))
        params = {"suffix": f"-{run}{k}", "shift": k * 7_919_000_003 % span, "lim": left}
        with db.transaction() as tx:
            tx.execute(
                db.sql(
                    f"INSERT INTO records ({cols}) SELECT {picks} FROM records WHERE id NOT LIKE '%-%' "
                    "ORDER BY id LIMIT :lim"
                ),
                params,
            )
            tx.execute(
                db.sql(
                    f"INSERT INTO record_tags (deployment, tag, start_us, id) SELECT deployment, tag, "
                    f"{shifted}, id || :suffix FROM record_tags WHERE id NOT LIKE '%-%'"
                ),
                params,
            )
        print(f"  {have + base * (k - 1) + left:,} records", flush=True)
    pg = db.dialect == "postgresql"
    floor = "floor" if pg else ""
    bin_sql = (
        f"CASE WHEN latency_ms <= {BIN_FLOOR_MS} THEN 0 ELSE CAST({floor}(ln(latency_ms / {BIN_FLOOR_MS}) "
        f"/ ln({BIN_RATIO})) AS INTEGER) + 1 END"
    )
    bins_agg = "jsonb_object_agg(CAST(bin AS TEXT), n)" if pg else "json_group_object(CAST(bin AS TEXT), n)"
    with db.transaction() as tx:
        for res in RESOLUTIONS:
            bucket = f"start_us - start_us % {res.size_us}"
            tx.execute(f"DELETE FROM {res.table}")
            errors = ", ".join(
                f"SUM(CASE WHEN status <> 'success' AND {ERROR_CLASS_SQL[c]} THEN 1 ELSE 0 END)" for c in ERROR_CLASSES
            )
            # (the panel sums, from the cost breakdowns' JSON, are filled below as 0018 fills them)
            sums = [c for c in SUM_COLUMNS if c not in panel_sums.COLUMNS]
            tx.execute(
                f"INSERT INTO {res.table} (deployment, bucket_us, {', '.join(sums)}) "
                f"SELECT deployment, {bucket}, COUNT(*), "
                "SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), SUM(prompt_tokens), "
                "SUM(completion_tokens), SUM(total_tokens), SUM(cached_tokens), SUM(reasoning_tokens), "
                f"SUM(spend_pusd), SUM(latency_ms), COALESCE(SUM(ttft_ms), 0), COUNT(ttft_ms), {errors} "
                f"FROM records GROUP BY deployment, {bucket}"
            )
            for column, value in (("latency_bins", "latency_ms"), ("ttft_bins", "ttft_ms")):
                tx.execute(
                    f"UPDATE {res.table} SET {column} = b.bins FROM (SELECT deployment, bucket_us, "
                    f"{bins_agg} AS bins FROM (SELECT deployment, {bucket} AS bucket_us, "
                    f"{bin_sql.replace('latency_ms', value)} AS bin, COUNT(*) AS n FROM records "
                    f"WHERE {value} IS NOT NULL GROUP BY 1, 2, 3) AS x GROUP BY 1, 2) AS b "
                    f"WHERE {res.table}.deployment = b.deployment AND {res.table}.bucket_us = b.bucket_us"
                )
        migration_0018.backfill_0018(db, tx)
        for res in DIM_RESOLUTIONS:
            bucket = f"start_us - start_us % {res.size_us}"
            tx.execute(f"DELETE FROM {dim_table(res)}")
            for dim, col in DIMENSIONS.items():
                tx.execute(
                    f"INSERT INTO {dim_table(res)} (deployment, dim, value, bucket_us, {', '.join(DIM_SUMS)}) "
                    f"SELECT deployment, '{dim}', COALESCE({col}, ''), {bucket}, COUNT(*), "
                    "SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), SUM(prompt_tokens), "
                    "SUM(completion_tokens), SUM(total_tokens), SUM(spend_pusd) FROM records GROUP BY 1, 2, 3, 4"
                )
        reindex_request_ids(db, tx)
        rebuild_top(db, tx)
    top_rollups.forget(db)
    if db.dialect == "postgresql":
        rewritten = ["records", "record_tags", "request_ids", "record_filters", top_rollups.TABLE, "rollup_top_day"]
        rewritten += [res.table for res in RESOLUTIONS] + [dim_table(res) for res in DIM_RESOLUTIONS]
        vacuum(db, rewritten)
    print("  rollups and the request-id index rebuilt from the raw rows", flush=True)
    return (n - have) / (time.perf_counter() - t0)


def vacuum(db: Database, tables: list[str]) -> None:
    """VACUUM (ANALYZE) the tables the rebuild rewrote. With autovacuum off (as on the benchmark
    server) the DELETE/UPDATE rebuild leaves dead rows behind that made the panels' refreshes 3-4x
    slower. VACUUM cannot run inside a transaction: its own autocommit connection."""
    import psycopg

    t0 = time.perf_counter()
    with psycopg.connect(db.path, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM (ANALYZE) {table}")
    print(f"  VACUUM (ANALYZE) of {len(tables)} rewritten tables: {time.perf_counter() - t0:.1f} s", flush=True)


def reindex_request_ids(db: Database, tx: Any) -> None:
    """The copies' request ids and log filters, indexed as the server's indexer would have done."""
    tx.execute("DELETE FROM request_ids")
    tx.execute("DELETE FROM record_filters")
    t0 = time.perf_counter()
    slots.index_range(db, tx, 0, slots.until(db, tx))
    print(f"  request ids and log filters indexed in {time.perf_counter() - t0:.1f} s", flush=True)


def ingest_through_recorder(db: Database, n: int, cpu: list[float] | None = None) -> float:
    """Sustained ingest through the batch writer: CallRecords in, stored rows out (records/s).
    As a gateway's records do, they arrive in time order and soon after their calls started (here:
    over the last minute); their ids and times are appended to the indexes, and their request ids
    are left to the quarter-hour indexer (calls that started before its last slot would each take a
    random-order write: with an hour's spread, ~90% of them did, and the rate fell ~20%)."""
    rnd = random.Random(99)
    recs = sorted((synthetic(rnd, time.time() - 60, 60) for _ in range(n)), key=lambda r: r.start)
    recorder = Recorder(db, maxsize=Settings.queue_size, batch_size=Settings.batch_size)  # the server's defaults
    recorder.start()
    t0, c0 = time.perf_counter(), time.process_time()
    for rec in recs:
        while not recorder.submit_nowait(rec):
            time.sleep(0.0005)
    recorder.stop(timeout=600)
    if cpu is not None:
        cpu.append(time.process_time() - c0)  # this process's CPU seconds (the writer's among them)
    return n / (time.perf_counter() - t0)


def index_after_ingest(db: Database, since_us: int) -> float:
    """Seconds the server's indexer (storage.slots) takes to copy the records since ``since_us``
    into the slot indexes: work the writer is spared, done later in one transaction per step."""
    t0 = time.perf_counter()
    with db.transaction() as tx:
        slots.index_range(db, tx, since_us, int(time.time() * 1e6) + 1)
    return time.perf_counter() - t0


def store_only(db: Database, n: int) -> float:
    """The storage layer's own rate: rows finished beforehand, stored with insert_rows in the
    server's batch size (what the writer thread does, without the finisher sharing the GIL)."""
    rnd = random.Random(7)
    pricer = Pricer()
    rows = [
        finish(r, pricer)
        for r in sorted((synthetic(rnd, time.time() - 60, 60) for _ in range(n)), key=lambda r: r.start)
    ]
    batch = Settings.batch_size
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        insert_rows(db, rows[i : i + batch])
    return n / (time.perf_counter() - t0)


def ingest_with_and_without_top_n(n: int, rounds: int = 4) -> None:
    """The same ingest into fresh SQLite files, alternately without the hourly top-N rollups (as
    before 0017) and with them, so both rates are measured under the same machine load."""
    import tempfile

    from modelmeter.storage import records as records_mod

    real = records_mod.top_rollups.add_rows
    rates: dict[str, list[float]] = {"without top-N rollups": [], "with top-N rollups": []}
    # Records per second of this process's CPU time too: other work on the machine slows the wall
    # clock of both runs unevenly, the CPU each run needed much less.
    cpu_rates: dict[str, list[float]] = {label: [] for label in rates}
    labels = list(rates)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for label in labels if i % 2 == 0 else labels[::-1]:  # each order in turn
                records_mod.top_rollups.add_rows = real if label.startswith("with ") else (lambda *a: None)  # type: ignore[assignment]
                try:
                    fresh = Database(f"sqlite:///{tmp}/ingest-{i}-{label[:4]}.db")
                    migrate(fresh)
                    cpu: list[float] = []
                    rates[label].append(ingest_through_recorder(fresh, n, cpu))
                    cpu_rates[label].append(n / cpu[0])
                    fresh.close()
                finally:
                    records_mod.top_rollups.add_rows = real  # type: ignore[assignment]
    print(f"\ningest, {n:,} records a run, {KEYS:,} keys, {USERS:,} users, {SESSIONS:,} sessions (SQLite)")
    for title, table in (("records/s (wall clock)", rates), ("records per CPU second", cpu_rates)):
        print(f"  {title}")
        for label, got in table.items():
            runs = "  ".join(f"{r:>9,.0f}" for r in got)
            print(f"    {label:<24}{runs}   median {statistics.median(got):,.0f}")
    ratio = statistics.median(cpu_rates["with top-N rollups"]) / statistics.median(cpu_rates["without top-N rollups"])
    print(f"  with / without, CPU: {ratio:.3f}")


def median_ms(fn: Callable[[], Any], repeat: int = 7) -> float:
    fn()  # warm caches, as a page in use would be
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def once_ms(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def insights_section(db: Database, dep: str) -> None:
    """Usage insights (issue 14): each new query's first call ("cold": its first run in this
    process, the database file possibly in the OS cache) and a refresh (median of 7 repeats, with
    the caches the API keeps per process)."""
    from modelmeter.usage import panels as panels_q  # (here: ingest_ab.py runs this file on older trees)

    w = parse_window
    bins = BinsCache()  # as the API keeps one per process
    queries = [
        ("cards + previous window, 7 days", lambda: summary_q.summary_with_previous(db, dep, w("7d"), cache=bins)),
        ("cards + previous window, 30 days", lambda: summary_q.summary_with_previous(db, dep, w("30d"), cache=bins)),
        ("latency + TTFT distribution, 7 days", lambda: insights_q.distributions(db, dep, w("7d"), cache=bins)),
        ("latency + TTFT distribution, 30 days", lambda: insights_q.distributions(db, dep, w("30d"), cache=bins)),
        ("latency + TTFT distribution, 24 h", lambda: insights_q.distributions(db, dep, w("24h"), cache=bins)),
        ("output speed, 7 days (1 h buckets)", lambda: insights_q.throughput(db, dep, w("7d"))),
        ("output speed, 24 h (15 min buckets)", lambda: insights_q.throughput(db, dep, w("24h"))),
        ("errors by type, 7 days (1 h buckets)", lambda: insights_q.errors(db, dep, w("7d"))),
        ("errors by type, 24 h (15 min buckets)", lambda: insights_q.errors(db, dep, w("24h"))),
        ("breakdown by call type, 7 days", lambda: breakdowns_q.breakdown(db, dep, w("7d"), "call_type")),
        ("cost by component, 7 days (1 h buckets)", lambda: panels_q.panel(db, dep, w("7d"), "costs")),
        ("caching, 24 h (15 min buckets)", lambda: panels_q.panel(db, dep, w("24h"), "cache")),
    ]
    top = top_q.TopCache()  # as the API keeps one per process
    for by in top_rollups.TOP_DIMENSIONS:
        for span in ("24h", "7d", "30d"):
            queries.append(
                (
                    f"breakdown by {by}, {span}",
                    lambda by=by, span=span: top_q.breakdown(db, dep, w(span), by, cache=top),
                )
            )
    print(f"\nusage insights, {dep}")
    print(f"{'query':<44}{'cold ms':>10}{'refresh ms':>12}")
    for name, fn in queries:
        cold = once_ms(fn)
        print(f"{name:<44}{cold:>10.2f}{median_ms(fn):>12.2f}")


def fleet_section(db: Database) -> None:
    """The Models page's fleet usage (every deployment's figures, totals, previous window and
    sparklines in one call), against what it replaces: one cards call per deployment (the Usage
    tab's summary with its previous window), measured in the same run."""
    names = [d.name for d, _ in DEPLOYMENTS]
    w = parse_window
    print(f"\nfleet usage (Models page), {len(names)} deployments")
    print(f"{'query':<52}{'cold ms':>10}{'refresh ms':>12}")
    for label in ("24h", "7d", "30d"):
        fleet = lambda label=label: fleet_q.fleet(db, names, w(label))  # noqa: E731
        cold = once_ms(fleet)
        print(f"{'fleet usage, ' + label + ' (one call)':<52}{cold:>10.2f}{median_ms(fleet):>12.2f}")
        each = lambda label=label: [summary_q.summary_with_previous(db, n, w(label)) for n in names]  # noqa: E731
        print(f"{'  vs cards + previous per deployment, ' + label:<52}{once_ms(each):>10.2f}{median_ms(each):>12.2f}")


def deep_cursor(db: Database, dep: str, pages: int, status: str | None = None) -> str | None:
    window = parse_window("7d")
    cursor = None
    for _ in range(pages):
        cursor = records_q.page(db, dep, window, limit=200, cursor=cursor, status=status)["next_cursor"]
    return cursor


def exact_p95(db: Database, dep: str) -> float:
    w = parse_window("7d")
    n = db.fetchone(
        "SELECT COUNT(*) FROM records WHERE deployment = :d AND start_us >= :a AND start_us < :b",
        {"d": dep, "a": w.start_us, "b": w.end_us},
    )[0]
    row = db.fetchone(
        "SELECT latency_ms FROM records WHERE deployment = :d AND start_us >= :a AND start_us < :b "
        "ORDER BY latency_ms LIMIT 1 OFFSET :o",
        {"d": dep, "a": w.start_us, "b": w.end_us, "o": max(math.ceil(0.95 * n), 1) - 1},
    )
    return float(row[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default="sqlite:////tmp/mm-scale.db")
    ap.add_argument("--insights-only", action="store_true", help="only the usage insights section")
    ap.add_argument("--fleet-only", action="store_true", help="only the fleet usage (Models page) section")
    ap.add_argument(
        "--ingest-compare",
        type=int,
        default=0,
        help="records per run: ingest into fresh SQLite files with and without the top-N rollups, then stop",
    )
    ap.add_argument("--records", type=int, default=1_000_000, help="total records in the database")
    ap.add_argument("--ingest", type=int, default=200_000, help="records for the recorder ingest test (0: skip)")
    ap.add_argument(
        "--ingest-only", action="store_true", help="only the ingest rates (the recorder's, then insert_rows' alone)"
    )
    ap.add_argument(
        "--no-fill", action="store_true", help="time an existing database (after the ingest test, unless --ingest 0)"
    )
    ap.add_argument(
        "--base",
        type=int,
        default=500_000,
        help="records made one by one before the rest are time-shifted copies of them",
    )
    args = ap.parse_args()
    if args.ingest_compare:
        ingest_with_and_without_top_n(args.ingest_compare)
        return
    db = Database(args.database)
    migrate(db)
    # PostgreSQL: each day of the filled window gets its partitions (else its rows go to DEFAULT)
    partitions.ensure(db, int((time.time() - (DAYS + 1) * 86400) * 1e6), int(time.time() * 1e6))
    existing = db.fetchone("SELECT COUNT(*) FROM records")[0]
    print(f"database {args.database}: {existing:,} records")
    if args.ingest:
        since_us = int((time.time() - 61) * 1e6)  # the records arrive stamped over the last minute
        rate = ingest_through_recorder(db, args.ingest)
        print(f"ingest through the batch writer (CallRecord -> priced, stored row + rollups): {rate:,.0f} records/s")
        index_s = index_after_ingest(db, since_us)
        print(
            f"  then the slot indexer's copy of them (request ids, key/session/user filters): "
            f"{index_s:.2f} s, {index_s / args.ingest * 1e6:.1f} µs a record; "
            f"both together {args.ingest / (args.ingest / rate + index_s):,.0f} records/s"
        )
        existing += args.ingest
    if args.ingest_only:
        rate = store_only(db, args.ingest or 200_000)
        print(
            f"insert_rows alone (finished rows, batches of {Settings.batch_size:,}; records + rollups): "
            f"{rate:,.0f} records/s"
        )
        return
    if not args.no_fill and existing < args.records:
        target_base = min(args.base, args.records)
        if existing < target_base:
            print(f"filling {target_base - existing:,} records over {DAYS} days ...")
            rate = fill(db, target_base - existing)
            print(f"bulk fill through finish() and insert_rows(): {rate:,.0f} rows/s")
            existing = target_base
        if existing < args.records:
            print(f"copying to {args.records:,} records ...")
            multiply(db, existing, args.records)
    if db.dialect == "postgresql":
        db.execute("ANALYZE")
    # The queries run as in the server, whose start-up heap is frozen and whose collector runs
    # rarely (serve.tune_gc): else a ~50 ms full collection of the fill's objects lands in one of them.
    tune_gc()
    total = db.fetchone("SELECT COUNT(*) FROM records")[0]
    dep = DEPLOYMENTS[0][0].name
    if args.insights_only or args.fleet_only:
        print(f"{total:,} records, {db.dialect}")
        (fleet_section(db) if args.fleet_only else insights_section(db, dep))
        return
    w7 = parse_window("7d")
    # A record with bodies, from the middle of the table.
    some_id = db.fetchone(
        "SELECT id FROM record_bodies ORDER BY id LIMIT 1 OFFSET :o",
        {"o": db.fetchone("SELECT COUNT(*) FROM record_bodies")[0] // 2},
    )[0]
    some_rid = db.fetchone(
        "SELECT request_id FROM records WHERE deployment = :d AND start_us >= :a ORDER BY start_us LIMIT 1",
        {"d": dep, "a": w7.start_us + 3 * 86_400_000_000},
    )[0]
    deep = deep_cursor(db, dep, 50)
    deep_err = deep_cursor(db, dep, 5, status="error")
    percentiles = PercentileCache()  # as the API keeps one per process
    rows = [
        ("summary, 7 days", lambda: summary_q.summary(db, dep, parse_window("7d")), 100),
        ("summary, 30 days", lambda: summary_q.summary(db, dep, parse_window("30d")), 100),
        ("timeseries, 7 days (1 h buckets), cold", lambda: summary_q.timeseries(db, dep, parse_window("7d")), 100),
        (
            "timeseries, 7 days, refresh (API's cache)",
            lambda: summary_q.timeseries(db, dep, parse_window("7d"), cache=percentiles),
            100,
        ),
        ("timeseries, 24 h (15 min buckets), cold", lambda: summary_q.timeseries(db, dep, parse_window("24h")), 100),
        ("log page 1 (50 rows)", lambda: records_q.page(db, dep, w7, limit=50), 50),
        ("log page 1, status=error", lambda: records_q.page(db, dep, w7, limit=50, status="error"), 50),
        ("log page deep (after 10,000 rows)", lambda: records_q.page(db, dep, w7, limit=50, cursor=deep), 50),
        (
            "log page deep, status=error (after 1,000)",
            lambda: records_q.page(db, dep, w7, limit=50, cursor=deep_err, status="error"),
            50,
        ),
        ("log page, tag filter", lambda: records_q.page(db, dep, w7, limit=50, tag="bench:demo"), 50),
        ("log page, key filter (a heavy key)", lambda: records_q.page(db, dep, w7, limit=50, key_alias="key-3"), 50),
        ("log page, key filter (a tail key)", lambda: records_q.page(db, dep, w7, limit=50, key_alias="key-7777"), 50),
        ("log page, session filter", lambda: records_q.page(db, dep, w7, limit=50, session="sess-1234"), 50),
        ("log page, end-user filter", lambda: records_q.page(db, dep, w7, limit=50, end_user="user-7"), 50),
        ("log page, unknown end user", lambda: records_q.page(db, dep, w7, limit=50, end_user="user-none"), 50),
        ("log search by request id, 7 days", lambda: records_q.page(db, dep, w7, limit=50, search=some_rid), 50),
        ("one record with bodies", lambda: records_q.one(db, some_id), 20),
        ("models page: last 24 h of every deployment", lambda: summary_q.last_day_by_deployment(db), 100),
    ]
    print(f"\n{total:,} records, {db.dialect}; median of 7 calls after one warm-up")
    print(f"{'query':<44}{'median ms':>10}{'target':>9}  ok")
    for name, fn, target in rows:
        ms = median_ms(fn)
        print(f"{name:<44}{ms:>10.2f}{target:>9}  {'yes' if ms <= target else 'NO'}")
    insights_section(db, dep)
    fleet_section(db)
    hits = records_q.page(db, dep, w7, limit=50, search=some_rid)["data"]
    # (In databases copied before copies had request ids of their own, a request id has several.)
    want = db.fetchone(
        "SELECT COUNT(*) FROM records WHERE deployment = :d AND start_us >= :a AND start_us < :b AND request_id = :r",
        {"d": dep, "a": w7.start_us, "b": w7.end_us, "r": some_rid},
    )[0]
    right = len(hits) == min(want, 50) > 0 and all(h["request_id"] == some_rid for h in hits)
    print(
        f"\nrequest-id search found {len(hits)} of the {want} record(s) with {some_rid}: "
        f"{'right' if right else 'WRONG'}"
    )
    w = parse_window("7d")
    raw_n = db.fetchone(
        "SELECT COUNT(*) FROM records WHERE deployment = :d AND start_us >= :a AND start_us < :b",
        {"d": dep, "a": w.start_us, "b": w.end_us},
    )[0]
    rolled_n = summary_q.summary(db, dep, w)["requests"]
    verdict = "equal" if rolled_n == raw_n else "DIFFERENT"
    print(f"requests in 7 days: rollups {rolled_n:,}, raw rows {raw_n:,} ({verdict})")
    rolled = summary_q.summary(db, dep, parse_window("7d"))["p95_latency_ms"]
    exact = exact_p95(db, dep)
    print(
        f"p95 latency, 7 days: rollups {rolled:.3f} ms, exact {exact:.3f} ms, "
        f"{abs(rolled - exact) / exact * 100:.3f}% apart (target <= 1%)"
    )


if __name__ == "__main__":
    main()
