"""A fresh, migrated database of each kind: SQLite in a temp dir, and a new PostgreSQL database
created on the server at MODELMETER_TEST_PG (default: the local one) and dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from tests.pg_databases import temp_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    with temp_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
    else:
        with temp_database() as url:
            yield url


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
