"""A fresh, migrated database of each kind: SQLite in a temp dir, and a new PostgreSQL database
created on the server at MODELMETER_TEST_PG (default: the local one) and dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate

PG_ADMIN = os.environ.get("MODELMETER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_database() -> tuple[str, str]:
    """Create an empty PostgreSQL database; returns (its URL, its name)."""
    name = f"mm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}", name


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    url, name = pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
    else:
        url, name = pg_database()
        try:
            yield url
        finally:
            drop_pg_database(name)


def _migrated(url: str) -> Iterator[Database]:
    database = Database(url)
    migrate(database)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    yield from _migrated(db_url)


@pytest.fixture
def pg(pg_url: str) -> Iterator[Database]:
    """A migrated PostgreSQL database only (for what SQLite does not have, e.g. partitions)."""
    yield from _migrated(pg_url)
