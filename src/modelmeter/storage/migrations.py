"""The one schema source: named, append-only migrations, applied in order at start-up.

Never edit a migration that has shipped; add a new one. The SQL uses types both databases accept
(SQLite maps BIGINT/SMALLINT to INTEGER affinity and DOUBLE PRECISION to REAL). A migration holds
its own SQL and code (data steps in ``migration_steps``) and never calls today's application code
(rollups, histograms, request ids), which may change after it shipped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelmeter.storage import (
    migration_0003,
    migration_0015,
    migration_0016_0017,
    migration_0018,
    migration_0019,
    migration_0020,
    migration_0021,
    migration_0022,
    migration_steps,
)
from modelmeter.storage.database import Database


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]
    # A data step run after the statements, in the same transaction (e.g. a backfill).
    backfill: Callable[[Database, Any], None] | None = None
    # Statements for PostgreSQL only (e.g. functions SQLite gets from Python on each connection).
    postgresql: tuple[str, ...] = ()


# The data steps of shipped migrations, frozen in their own module (they never call today's code).
_backfill_rollups = migration_steps.backfill_rollups_0003
_fold_histograms = migration_steps.fold_histograms_0005
_index_past_request_ids = migration_steps.index_past_request_ids_0007
_fill_quarters = migration_steps.fill_quarters_0008
_fill_upstream_rollups = migration_steps.fill_upstream_rollups_0016


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_records",
        (
            # The narrow log rows: everything the request log and the summaries read; no bodies.
            """CREATE TABLE records (
            id TEXT PRIMARY KEY,
            request_id TEXT,
            deployment TEXT NOT NULL,
            model TEXT,
            model_id TEXT,
            provider TEXT,
            call_type TEXT NOT NULL,
            api_base TEXT,
            client_ip TEXT,
            status TEXT NOT NULL,
            http_status SMALLINT NOT NULL,
            error TEXT,
            stream SMALLINT NOT NULL,
            start_us BIGINT NOT NULL,
            end_us BIGINT NOT NULL,
            latency_ms DOUBLE PRECISION NOT NULL,
            ttft_ms DOUBLE PRECISION,
            overhead_ms DOUBLE PRECISION NOT NULL,
            retries SMALLINT NOT NULL,
            cache_hit SMALLINT NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            cached_tokens BIGINT NOT NULL,
            reasoning_tokens BIGINT NOT NULL,
            usage_estimated SMALLINT NOT NULL,
            spend_pusd BIGINT NOT NULL,
            cost_breakdown TEXT NOT NULL,
            price_source TEXT NOT NULL,
            metadata TEXT,
            tags TEXT,
            bodies SMALLINT NOT NULL
        )""",
            # Keyset pages: newest first per deployment, optionally by status.
            "CREATE INDEX records_page ON records (deployment, start_us, id)",
            "CREATE INDEX records_page_status ON records (deployment, status, start_us, id)",
            "CREATE INDEX records_request_id ON records (request_id)",
            "CREATE INDEX records_time ON records (start_us)",
            # Bodies apart, so a log page never reads them.
            """CREATE TABLE record_bodies (
            id TEXT PRIMARY KEY,
            request TEXT,
            response TEXT
        )""",
            # One row per (record, tag): the tag filter pages on its own index.
            """CREATE TABLE record_tags (
            deployment TEXT NOT NULL,
            tag TEXT NOT NULL,
            start_us BIGINT NOT NULL,
            id TEXT NOT NULL,
            PRIMARY KEY (deployment, tag, start_us, id)
        )/*WITHOUT_ROWID*/""",
            # Run-time deployments (POST /api/deployments); config-file ones live in the config.
            """CREATE TABLE deployments (
            name TEXT PRIMARY KEY,
            definition TEXT NOT NULL,
            created_us BIGINT NOT NULL
        )""",
        ),
    ),
    Migration(
        "0002_runs",
        (
            # Benchmark and evaluation runs: their parameters and reports, for `bench list/compare`.
            """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            deployment TEXT,
            created_us BIGINT NOT NULL,
            params TEXT NOT NULL,
            report TEXT
        )""",
            "CREATE INDEX runs_created ON runs (created_us)",
        ),
    ),
    Migration("0003_rollups", migration_0003.statements_0003(), backfill=_backfill_rollups),
    Migration(
        "0004_keys",
        (
            # Server-wide values, e.g. the hash of a generated admin key (never the key itself).
            "CREATE TABLE server_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            # Virtual keys for /v1: only a hash of the key is kept.
            """CREATE TABLE virtual_keys (
            alias TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            key_prefix TEXT NOT NULL,
            created_us BIGINT NOT NULL,
            revoked_us BIGINT,
            rpm_limit BIGINT,
            tpm_limit BIGINT,
            budget_pusd BIGINT,
            spent_pusd BIGINT NOT NULL DEFAULT 0
        )""",
            "ALTER TABLE records ADD COLUMN key_alias TEXT",
            "CREATE INDEX records_page_key ON records (deployment, key_alias, start_us, id)",
        ),
    ),
    # A bucket's latency histogram in its own row: a week of hours reads 168 rows, not ~70,000.
    Migration(
        "0005_rollup_bins",
        (
            "ALTER TABLE rollup_minute ADD COLUMN latency_bins /*JSON*/",
            "ALTER TABLE rollup_hour ADD COLUMN latency_bins /*JSON*/",
        ),
        backfill=_fold_histograms,
        postgresql=(migration_steps.POSTGRES_BINS_ADD_0005,),
    ),
    Migration(
        "0006_drop_rollup_hist",
        (
            "DROP TABLE rollup_hist_minute",
            "DROP TABLE rollup_hist_hour",
        ),
    ),
    # Request ids indexed a quarter hour at a time (storage/request_ids.py), not row by row.
    Migration(
        "0007_request_ids",
        (
            "DROP INDEX records_request_id",
            """CREATE TABLE request_ids (
            slot_us BIGINT NOT NULL,
            request_id TEXT NOT NULL,
            id TEXT NOT NULL,
            PRIMARY KEY (slot_us, request_id, id)
        )/*WITHOUT_ROWID*/""",
        ),
        backfill=_index_past_request_ids,
    ),
    # Quarter hours: a day's chart in 15-minute buckets reads 96 rows (measured on PostgreSQL at
    # 10 M records: 102 ms from 1,440 minute rows).
    Migration(
        "0008_rollup_quarter",
        (
            """CREATE TABLE rollup_quarter (
            deployment TEXT NOT NULL,
            bucket_us BIGINT NOT NULL,
            requests BIGINT NOT NULL,
            succeeded BIGINT NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            cached_tokens BIGINT NOT NULL,
            reasoning_tokens BIGINT NOT NULL,
            spend_pusd BIGINT NOT NULL,
            latency_sum DOUBLE PRECISION NOT NULL,
            ttft_sum DOUBLE PRECISION NOT NULL,
            ttft_count BIGINT NOT NULL,
            latency_bins /*JSON*/,
            PRIMARY KEY (deployment, bucket_us)
        )/*WITHOUT_ROWID*/""",
        ),
        backfill=_fill_quarters,
    ),
    # The model id each call was priced as (the configured model, or a dated snapshot of it).
    Migration("0009_priced_model", ("ALTER TABLE records ADD COLUMN priced_model TEXT",)),
    # The agent session a call belongs to; the log filters by it and by call type, each on its own
    # keyset index (deployment, x, start_us, id), as the status and key filters do.
    Migration(
        "0010_sessions",
        (
            "ALTER TABLE records ADD COLUMN session_id TEXT",
            "CREATE INDEX records_page_session ON records (deployment, session_id, start_us, id)",
            "CREATE INDEX records_page_call_type ON records (deployment, call_type, start_us, id)",
        ),
    ),
    # A translated call (a client API other than the upstream's) keeps what went upstream and
    # what the upstream answered, beside the client's own bodies.
    Migration(
        "0011_upstream_bodies",
        (
            "ALTER TABLE record_bodies ADD COLUMN upstream_request TEXT",
            "ALTER TABLE record_bodies ADD COLUMN upstream_response TEXT",
        ),
    ),
    # Alerts (modelmeter.alerts): rules made through the API (config rules live in the config), each
    # rule's current state (one row, changed by compare-and-set so one process notifies), its state
    # changes, and every webhook delivery attempt. Rollups get a TTFT histogram for p95 TTFT rules
    # (older buckets have none: NULL).
    Migration(
        "0012_alerts",
        (
            "ALTER TABLE rollup_minute ADD COLUMN ttft_bins /*JSON*/",
            "ALTER TABLE rollup_quarter ADD COLUMN ttft_bins /*JSON*/",
            "ALTER TABLE rollup_hour ADD COLUMN ttft_bins /*JSON*/",
            """CREATE TABLE alert_rules (
            name TEXT PRIMARY KEY,
            definition TEXT NOT NULL,
            created_us BIGINT NOT NULL
        )""",
            """CREATE TABLE alert_state (
            name TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            since_us BIGINT NOT NULL,
            value DOUBLE PRECISION,
            last_fired_us BIGINT,
            checked_us BIGINT NOT NULL
        )""",
            """CREATE TABLE alert_events (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            value DOUBLE PRECISION,
            threshold DOUBLE PRECISION NOT NULL,
            started_us BIGINT NOT NULL,
            at_us BIGINT NOT NULL,
            body TEXT
        )""",
            "CREATE INDEX alert_events_name ON alert_events (name, at_us)",
            """CREATE TABLE alert_deliveries (
            id TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            name TEXT NOT NULL,
            attempt SMALLINT NOT NULL,
            at_us BIGINT NOT NULL,
            http_status SMALLINT,
            error TEXT,
            duration_ms DOUBLE PRECISION NOT NULL,
            ok SMALLINT NOT NULL
        )""",
            "CREATE INDEX alert_deliveries_name ON alert_deliveries (name, at_us)",
        ),
    ),
    # Spend limits per end user (the request's "user" field), counted from when each is set.
    Migration(
        "0013_user_budgets",
        (
            """CREATE TABLE user_budgets (
            end_user TEXT PRIMARY KEY,
            budget_pusd BIGINT NOT NULL,
            spent_pusd BIGINT NOT NULL DEFAULT 0,
            created_us BIGINT NOT NULL
        )""",
        ),
    ),
    # Several upstreams behind one deployment: the one that answered each call, and every attempt
    # (upstream, status, error, latency, tokens, cost) as a JSON list; NULL for one-upstream calls.
    Migration(
        "0014_attempts",
        (
            "ALTER TABLE records ADD COLUMN served_by TEXT",
            "ALTER TABLE records ADD COLUMN attempts TEXT",
        ),
    ),
    # Failed requests by class per rollup bucket (issue 14: errors by type over time).
    Migration("0015_insights", migration_0015.statements_0015()),
    # The Usage tab's split by upstream from rollups per (deployment, upstream, minute / hour) of
    # routed calls, filled from the records (a 7-day split read every routed record of the week).
    Migration(
        "0016_upstream_rollups",
        migration_0016_0017.statements_0016(),
        backfill=_fill_upstream_rollups,
    ),
    # Breakdowns by API key, end user, tag and session (issue 14): per deployment, dimension and
    # hour, the top values by spend (then requests) with a row each, and one "others" row
    # (other = 1) holding the rest, so an hour's rows add up to it exactly; storage/top_rollups.py.
    Migration(
        "0017_topn_breakdowns",
        migration_0016_0017.statements_0017(),
        backfill=migration_steps.backfill_top_0017,
    ),
    # Spend per cost component, cache writes and savings, retries per rollup bucket (issue 14: the
    # cost, cache, retries and reasoning panels), filled from the records (migration_0018.py).
    Migration("0018_panel_sums", migration_0018.statements_0018(), backfill=migration_0018.backfill_0018),
    # The log's key, session and end-user filters indexed a quarter hour at a time in
    # record_filters, not record by record at random places (ingest: storage/record_filters.py).
    Migration("0019_record_filters", migration_0019.statements_0019(), backfill=migration_0019.backfill_0019),
    # PostgreSQL: the per-record tables partitioned by day (retention drops a day whole).
    Migration("0020_partitions", (), backfill=migration_0020.upgrade_0020),
    # The top-N rows' latency histograms summed per day: a breakdown's p95s read a row per value
    # and day, not per value and hour (storage/top_days.py).
    Migration(
        "0021_top_days",
        migration_0021.statements_0021(),
        backfill=migration_0021.backfill_0021,
        postgresql=(migration_0021.POSTGRES_BINS_NET_0021,),
    ),
    # A day resolution for the rollups: a week's cards and distributions read 7 day rows and the
    # hours at either end, not 168 hours' histograms (migration_0022.py).
    Migration("0022_rollup_day", migration_0022.statements_0022(), backfill=migration_0022.backfill_0022),
)


def applied(db: Database) -> list[str]:
    _ensure_table(db)
    return [r[0] for r in db.fetchall("SELECT name FROM schema_migrations ORDER BY name")]


def pending(db: Database) -> list[str]:
    done = set(applied(db))
    return [m.name for m in MIGRATIONS if m.name not in done]


def migrate(db: Database) -> list[str]:
    """Apply every pending migration, each in its own transaction; safe with several processes."""
    ran: list[str] = []
    with db.transaction() as tx:
        _lock(db, tx)
        tx.execute(_CREATE_TABLE)
        done = {r[0] for r in tx.execute("SELECT name FROM schema_migrations").fetchall()}
        for migration in MIGRATIONS:
            if migration.name in done:
                continue
            for statement in (*migration.statements, *(migration.postgresql if db.dialect == "postgresql" else ())):
                tx.execute(_for_dialect(statement, db.dialect))
            if migration.backfill is not None:
                migration.backfill(db, tx)
            tx.execute(
                db.sql("INSERT INTO schema_migrations (name, applied_us) VALUES (:n, :t)"),
                {"n": migration.name, "t": int(time.time() * 1e6)},
            )
            ran.append(migration.name)
    return ran


_CREATE_TABLE = "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_us BIGINT NOT NULL)"


def _for_dialect(statement: str, dialect: str) -> str:
    # SQLite stores a WITHOUT ROWID table in its primary key's order: range scans of rollups read
    # contiguous pages. PostgreSQL has no such clause (and needs none).
    # A JSON value is TEXT in SQLite and jsonb (parsed once, merged in SQL) in PostgreSQL.
    # /*INCLUDE(…)*/: columns PostgreSQL keeps in the primary key's index too (index-only scans);
    # SQLite's WITHOUT ROWID table is its primary key's B-tree, so it has them there already.
    sqlite = dialect == "sqlite"
    statement = re.sub(r"/\*INCLUDE(\(.*?\))\*/", "" if sqlite else r" INCLUDE \1", statement)
    return statement.replace("/*WITHOUT_ROWID*/", " WITHOUT ROWID" if sqlite else "").replace(
        "/*JSON*/", "TEXT" if sqlite else "JSONB"
    )


def _lock(db: Database, tx: Any) -> None:
    """Serialise concurrent start-ups of several gateways on one PostgreSQL database (SQLite's
    BEGIN IMMEDIATE already does)."""
    if db.dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(7201026)")


def _ensure_table(db: Database) -> None:
    with db.transaction() as tx:
        _lock(db, tx)
        tx.execute(_CREATE_TABLE)
