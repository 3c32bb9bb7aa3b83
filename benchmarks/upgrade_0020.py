"""How long migration 0020 (PostgreSQL's per-record tables partitioned by day) takes on an existing
database: one made at migration 0019 and filled in SQL with copies of a real finished record
(a body on every record, a tag on 1%, spread over ``--days``), then upgraded by ``migrate``.

    python benchmarks/upgrade_0020.py --records 1000000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pg_databases
from tests.pg_databases import PG_ADMIN, temp_database

from modelmeter.config import Deployment
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import CallRecord, finish, new_record_id
from modelmeter.metering.usage import Usage
from modelmeter.storage import migrations
from modelmeter.storage.database import Database
from modelmeter.storage.row import RECORD_COLUMNS


def template() -> dict[str, object]:
    dep = Deployment(name="gpt", model="gpt-4o-mini", provider="openai", api_base="https://api.openai.com/v1")
    rec = CallRecord(id=new_record_id(time.time()), deployment=dep, model="gpt", call_type="chat", start=time.time())
    rec.end, rec.latency_ms, rec.usage = rec.start + 0.4, 400.0, Usage(300, 120, 420, reported=True)
    rec.request_id, rec.key_alias = "chatcmpl-x", "key-1"
    return dict(finish(rec, Pricer()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin", default=PG_ADMIN)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    with temp_database("mm_upgrade", args.admin) as url:
        run(url, args.records, args.days)


def run(url: str, records: int, days: int) -> None:
    db = Database(url)
    try:
        shipped = migrations.MIGRATIONS
        migrations.MIGRATIONS = tuple(m for m in shipped if m.name < "0020")
        migrations.migrate(db)
        migrations.MIGRATIONS = shipped
        row = template()
        end_us = int(time.time() * 1e6)
        step = days * 86_400_000_000 // records
        picks = []
        for c in RECORD_COLUMNS:
            if c == "id":
                picks.append("'r' || lpad(g::text, 12, '0')")
            elif c == "request_id":
                picks.append("'chatcmpl-' || g")
            elif c == "start_us":
                picks.append(f"{end_us} - g::bigint * {step}")
            elif c == "end_us":
                picks.append(f"{end_us} - g::bigint * {step} + 400000")
            else:
                picks.append(f"%({c})s")
        t0 = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}) SELECT {', '.join(picks)} "
                f"FROM generate_series(1, {records}) AS g",
                {c: row[c] for c in RECORD_COLUMNS},
            )
            body = '{"messages": [{"role": "user", "content": "' + "x" * 400 + '"}]}'
            conn.execute(
                "INSERT INTO record_bodies (id, request, response) SELECT id, %s, %s FROM records", (body, body)
            )
            conn.execute(
                "INSERT INTO record_tags (deployment, tag, start_us, id) "
                "SELECT deployment, 'bench', start_us, id FROM records WHERE id LIKE '%%00'"
            )
            conn.execute(
                "INSERT INTO request_ids (slot_us, request_id, id) "
                "SELECT start_us - start_us % 900000000, request_id, id FROM records"
            )
            conn.execute("VACUUM ANALYZE")
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        print(
            f"0019 database: {records:,} records over {days} days, "
            f"{(size[0] if size else 0) / 2**30:.2f} GiB (filled in {time.perf_counter() - t0:.0f} s)"
        )
        t0 = time.perf_counter()
        ran = migrations.migrate(db)
        print(f"migrate {ran}: {time.perf_counter() - t0:.1f} s")
    finally:
        db.close()


if __name__ == "__main__":
    main()
