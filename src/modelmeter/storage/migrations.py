"""The one schema source: named, append-only migrations, applied in order at start-up.

Never edit a migration that has shipped; add a new one. The SQL uses types both databases accept
(SQLite maps BIGINT/SMALLINT to INTEGER affinity and DOUBLE PRECISION to REAL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelmeter.storage import rollups
from modelmeter.storage.database import Database


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]
    # A data step run after the statements, in the same transaction (e.g. a backfill).
    backfill: Callable[[Database, Any], None] | None = None


def _backfill_rollups(db: Database, tx: Any) -> None:
    """Records stored before rollups existed are added to them, a page at a time."""
    # The columns as of this migration (later ones may add more).
    cols = ("id", "deployment", "start_us", "status", "prompt_tokens", "completion_tokens", "total_tokens",
            "cached_tokens", "reasoning_tokens", "spend_pusd", "latency_ms", "ttft_ms")
    last = ""
    while True:
        rows = tx.execute(db.sql(f"SELECT {', '.join(cols)} FROM records WHERE id > :last "
                                 "ORDER BY id LIMIT 5000"), {"last": last}).fetchall()
        if not rows:
            return
        rollups.add_rows(db, tx, [dict(zip(cols, r, strict=True)) for r in rows])
        last = rows[-1][0]


MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_records", (
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
    )),
    Migration("0002_runs", (
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
    )),
    Migration("0003_rollups", rollups.schema_statements(), backfill=_backfill_rollups),
    Migration("0004_keys", (
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
    )),
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
            for statement in migration.statements:
                tx.execute(_for_dialect(statement, db.dialect))
            if migration.backfill is not None:
                migration.backfill(db, tx)
            tx.execute(db.sql("INSERT INTO schema_migrations (name, applied_us) VALUES (:n, :t)"),
                       {"n": migration.name, "t": int(time.time() * 1e6)})
            ran.append(migration.name)
    return ran


_CREATE_TABLE = "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_us BIGINT NOT NULL)"


def _for_dialect(statement: str, dialect: str) -> str:
    # SQLite stores a WITHOUT ROWID table in its primary key's order: range scans of rollups read
    # contiguous pages. PostgreSQL has no such clause (and needs none).
    return statement.replace("/*WITHOUT_ROWID*/", " WITHOUT ROWID" if dialect == "sqlite" else "")


def _lock(db: Database, tx: Any) -> None:
    """Serialise concurrent start-ups of several gateways on one PostgreSQL database (SQLite's
    BEGIN IMMEDIATE already does)."""
    if db.dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(7201026)")


def _ensure_table(db: Database) -> None:
    with db.transaction() as tx:
        _lock(db, tx)
        tx.execute(_CREATE_TABLE)
