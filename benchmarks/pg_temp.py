"""A throwaway PostgreSQL database for a benchmark: created on entry, dropped on exit."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psycopg

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def temp_database(admin: str, prefix: str, keep: bool = False) -> Iterator[str]:
    """Yields the new database's URL (on the server ``admin`` names); ``keep``: not dropped."""
    name = f"{prefix}_{os.urandom(4).hex()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
