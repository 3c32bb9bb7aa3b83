"""0020_partitions, frozen: on PostgreSQL the per-record tables become partitioned by UTC day, so
retention drops a day's records whole (no row-by-row DELETE, no dead rows left to vacuum).

``records``, ``record_bodies``, ``record_tags``, ``record_filters`` (by ``start_us``) and
``request_ids`` (by ``slot_us``, a quarter hour: days are whole slots) each get one partition per
UTC day that holds records, one for today and the next three days, and a DEFAULT partition for
anything else. A partitioned table's unique keys must hold the partition column, so the records'
and the bodies' primary keys become ``(id, start_us)``; ``record_bodies`` gains ``start_us`` (its
record's) for that. Each table is copied into its new partitioned twin, then its indexes are built.

On SQLite ``record_bodies`` only gains the column (NULL on the rows stored before), so the writer
stores one shape of body row on both databases.

Never edit this once shipped: it holds its own SQL and never calls today's application code.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from modelmeter.storage.database import Database

_DAY_US_0020 = 86_400_000_000
_AHEAD_0020 = 3

# (table, partition column, its primary key and other indexes at 0020)
_TABLES_0020: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("record_bodies", "start_us", "PRIMARY KEY (id, start_us)", ()),
    ("record_tags", "start_us", "PRIMARY KEY (deployment, tag, start_us, id)", ()),
    (
        "record_filters",
        "start_us",
        "PRIMARY KEY (deployment, dim, value, start_us, id) INCLUDE (status, call_type)",
        (),
    ),
    ("request_ids", "slot_us", "PRIMARY KEY (slot_us, request_id, id)", ()),
    (
        "records",
        "start_us",
        "PRIMARY KEY (id, start_us)",
        (
            "CREATE INDEX records_page ON records (deployment, start_us, id)",
            "CREATE INDEX records_page_status ON records (deployment, status, start_us, id)",
            "CREATE INDEX records_page_call_type ON records (deployment, call_type, start_us, id)",
            "CREATE INDEX records_time ON records (start_us)",
        ),
    ),
)
_BODY_COLUMNS_0020 = "id, request, response, upstream_request, upstream_response"


def upgrade_0020(db: Database, tx: Any) -> None:
    if db.dialect == "sqlite":
        tx.execute("ALTER TABLE record_bodies ADD COLUMN start_us BIGINT")
        return
    today = int(time.time() * 1e6) // _DAY_US_0020
    days = {int(r[0]) for r in tx.execute(f"SELECT DISTINCT start_us / {_DAY_US_0020} FROM records").fetchall()}
    days |= set(range(today, today + _AHEAD_0020 + 1))
    # Bodies first: their start_us is read from the records (a body without its record: day 0).
    for table, column, key, indexes in _TABLES_0020:
        extra = ", start_us BIGINT NOT NULL" if table == "record_bodies" else ""
        tx.execute(
            f"CREATE TABLE {table}_0020 (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS{extra}) "
            f"PARTITION BY RANGE ({column})"
        )
        tx.execute(f"CREATE TABLE {table}_default PARTITION OF {table}_0020 DEFAULT")
        for day in sorted(days):
            name = f"{table}_d{datetime.fromtimestamp(day * 86400, UTC):%Y%m%d}"
            tx.execute(
                f"CREATE TABLE {name} PARTITION OF {table}_0020 "
                f"FOR VALUES FROM ({day * _DAY_US_0020}) TO ({(day + 1) * _DAY_US_0020})"
            )
        if table == "record_bodies":
            tx.execute(
                f"INSERT INTO record_bodies_0020 ({_BODY_COLUMNS_0020}, start_us) "
                f"SELECT {', '.join('b.' + c for c in _BODY_COLUMNS_0020.split(', '))}, COALESCE(r.start_us, 0) "
                "FROM record_bodies b LEFT JOIN records r ON r.id = b.id"
            )
        else:
            tx.execute(f"INSERT INTO {table}_0020 SELECT * FROM {table}")
        tx.execute(f"DROP TABLE {table}")
        tx.execute(f"ALTER TABLE {table}_0020 RENAME TO {table}")
        tx.execute(f"ALTER TABLE {table} ADD {key}")
        for statement in indexes:
            tx.execute(statement)
