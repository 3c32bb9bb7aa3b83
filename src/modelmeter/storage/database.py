"""Connections to SQLite or PostgreSQL behind one small interface.

SQL is written once with ``:name`` parameters and portable types; the PostgreSQL path rewrites the
parameters for psycopg. Each thread gets its own connection (the writer thread, API worker threads).
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any

from modelmeter.storage.histogram import sqlite_bins_add, sqlite_bins_net

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def in_list(prefix: str, values: Iterable[Any]) -> tuple[str, dict[str, Any]]:
    """``:p0, :p1, …`` and their parameters, for ``x IN (…)`` (the same SQL on both databases)."""
    params = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{name}" for name in params), params


@lru_cache(maxsize=512)
def _to_pyformat(sql: str) -> str:
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


class Database:
    """A database URL (``sqlite:///path`` or ``postgresql://…``) and per-thread connections."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:"):
            self.dialect = "sqlite"
            path = url.removeprefix("sqlite:").removeprefix("//")
            path = path[1:] if path.startswith("/") else path  # sqlite:///rel, sqlite:////abs
            self.path = path or ":memory:"
            if self.path != ":memory:":
                Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        elif url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
            self.dialect = "postgresql"
            self.path = url.replace("postgresql+psycopg:", "postgresql:", 1)
        else:
            raise ValueError(f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://…")
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    @property
    def plain_file(self) -> bool:
        """A SQLite database in a file named by its path (not in memory, not a ``file:`` URI)."""
        return self.dialect == "sqlite" and self.path != ":memory:" and not self.path.startswith("file:")

    # -- connections -------------------------------------------------------------------------
    def _open(self) -> Any:
        if self.dialect == "sqlite":
            if self.plain_file:
                _create_private(Path(self.path).expanduser())
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            _use_wal(conn, deadline=time.monotonic() + 30.0)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA cache_size=-65536")
            # Rollup upserts merge histograms in SQL (PostgreSQL has the function from a migration).
            conn.create_function("mm_bins_add", 2, sqlite_bins_add, deterministic=True)
            conn.create_function("mm_bins_net", 2, sqlite_bins_net, deterministic=True)
            return conn
        import orjson
        import psycopg
        from psycopg.types.json import set_json_loads

        pg = psycopg.connect(self.path, autocommit=True)
        set_json_loads(orjson.loads, pg)  # rollup histograms are jsonb: parse them with orjson
        # The usage reads are a few hundred rollup rows each. When the planner's estimate came near
        # a thousand it ran them with parallel workers, whose start took ~5 ms against ~0.4 of work
        # (the fleet's 24-hour refresh at 10 M: 10 ms, 5 without). Ten times the default setup cost
        # keeps parallel plans for the scans that gain from them (migrations, the indexer's copies).
        pg.execute("SET parallel_setup_cost = 10000")
        return pg

    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or (self.dialect == "postgresql" and conn.closed):
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def reset_connection(self) -> None:
        """Drop this thread's connection (after an error that may have broken it)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with suppress(Exception):
                conn.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with suppress(Exception):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- SQLite's write-ahead log ------------------------------------------------------------
    def defer_checkpoints(self, pages: int = 10_000) -> None:
        """This thread's commits copy the WAL into the database file only once it holds ``pages``
        pages (SQLite's default: 1,000): ``checkpoint``, run by another thread, does most of it,
        and what is left to the commit is small. (Not never: SQLite starts the WAL file over only
        after a checkpoint that caught up, which a checkpoint racing a busy writer never does.)"""
        if self.dialect == "sqlite":
            self.connection().execute(f"PRAGMA wal_autocheckpoint={int(pages)}")

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the database file, without waiting for readers or writers."""
        if self.dialect == "sqlite":
            self.connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    # -- statements --------------------------------------------------------------------------
    def json_param(self, name: str) -> str:
        """The placeholder for a JSON value given as text: jsonb needs the cast in PostgreSQL."""
        return f":{name}" if self.dialect == "sqlite" else f"CAST(:{name} AS jsonb)"

    def sql(self, text: str) -> str:
        return text if self.dialect == "sqlite" else _to_pyformat(text)

    def fetchall(self, text: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._read(text, params, lambda cur: list(cur.fetchall()))

    def fetchone(self, text: str, params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._read(text, params, lambda cur: cur.fetchone())
        return row

    def _read(self, text: str, params: Mapping[str, Any] | None, take: Callable[[Any], Any]) -> Any:
        """A read on this thread's connection; once more on a new one if that connection turned out
        to be dead: a PostgreSQL restart ends every open connection, and without this the first
        query of each thread after it failed though the server was back. Reads only: a write is
        never sent twice."""
        conn = self.connection()
        try:
            return take(conn.execute(self.sql(text), params or {}))
        except Exception as exc:
            if self.dialect != "postgresql" or not is_transient(exc) or not conn.closed:
                raise
            self.reset_connection()
            return take(self.connection().execute(self.sql(text), params or {}))

    def execute(self, text: str, params: Mapping[str, Any] | None = None) -> int:
        cur = self.connection().execute(self.sql(text), params or {})
        return int(cur.rowcount or 0)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction on this thread's connection; yields a cursor-like executor."""
        conn = self.connection()
        if self.dialect == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        else:
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    def executemany(self, executor: Any, text: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
        executor.executemany(self.sql(text), rows)


def _use_wal(conn: sqlite3.Connection, deadline: float) -> None:
    """Switch the file to write-ahead logging. Two connections switching a new file at once each
    hold a shared lock and want the exclusive one: SQLite breaks that deadlock by failing one of
    them at once, without its busy handler, so the loser waits a little and tries again (the file
    is usually in WAL mode by then, which makes the pragma a no-op)."""
    pause = 0.002
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600): it holds bodies, the admin key's
    hash and virtual keys' hashes. SQLite gives its -wal and -shm files the database file's mode."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def transient_errors() -> tuple[type[Exception], ...]:
    """The exception types of a database that is away, busy, locked or full (worth retrying)."""
    import psycopg

    return (sqlite3.OperationalError, psycopg.OperationalError, psycopg.InterfaceError)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying (the database is away, busy, locked, full, or a deadlock was broken), as
    opposed to a statement this data will never pass."""
    if isinstance(exc, sqlite3.OperationalError | ConnectionError | OSError | TimeoutError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
