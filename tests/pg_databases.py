"""Throwaway databases on the shared PostgreSQL server (``MODELMETER_TEST_PG``, default the local
one): created empty, dropped afterwards. Used by the tests and by the PostgreSQL benchmarks."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg

PG_ADMIN = os.environ.get("MODELMETER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def create(prefix: str = "mm_test", admin: str = PG_ADMIN) -> tuple[str, str]:
    """A new empty database: (its URL, its name)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin.rsplit('/', 1)[0]}/{name}", name


def drop(name: str, admin: str = PG_ADMIN) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def temp_database(prefix: str = "mm_test", admin: str = PG_ADMIN, keep: bool = False) -> Iterator[str]:
    """Yields a new database's URL; dropped on exit unless ``keep``."""
    url, name = create(prefix, admin)
    try:
        yield url
    finally:
        if not keep:
            drop(name, admin)
