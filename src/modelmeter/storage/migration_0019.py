"""0019_record_filters, frozen: the log's key, session and end-user filters move from indexes on
``records`` (written record by record, at random places) to ``record_filters``, filled a quarter
hour at a time by the indexer (``storage.slots``, ``storage.record_filters``).

Never edit this once shipped: it holds its own SQL and never calls today's application code.
"""

from __future__ import annotations

from typing import Any

from modelmeter.storage.database import Database


def statements_0019() -> tuple[str, ...]:
    return (
        """CREATE TABLE record_filters (
            deployment TEXT NOT NULL,
            dim TEXT NOT NULL,
            value TEXT NOT NULL,
            start_us BIGINT NOT NULL,
            id TEXT NOT NULL,
            status TEXT NOT NULL,
            call_type TEXT NOT NULL,
            PRIMARY KEY (deployment, dim, value, start_us, id)/*INCLUDE(status, call_type)*/
        )/*WITHOUT_ROWID*/""",
        "DROP INDEX records_page_key",
        "DROP INDEX records_page_session",
    )


def backfill_0019(db: Database, tx: Any) -> None:
    """Every record before the indexer's mark (later ones are read from the records until their
    quarter hour is indexed), in one statement sorted by the table's key."""
    row = tx.execute(db.sql("SELECT value FROM server_settings WHERE name = 'request_ids_until'")).fetchone()
    if not row or int(row[0]) == 0:
        return  # no mark: the indexer starts at the oldest record
    # The request's user when it is a string, else NULL; metadata with a NUL (\u0000, which jsonb
    # refuses) counts as no user. CASE fixes the order: the cast never sees such a row.
    if db.dialect == "sqlite":
        user = (
            "CASE WHEN metadata LIKE '%\"user\"%' AND metadata NOT LIKE '%\\u0000%' "
            "AND json_type(metadata, '$.user') = 'text' THEN json_extract(metadata, '$.user') END"
        )
    else:
        user = (
            "CASE WHEN metadata NOT LIKE '%\"user\"%' OR metadata LIKE '%\\\\u0000%' THEN NULL "
            "WHEN jsonb_typeof(CAST(metadata AS jsonb) -> 'user') = 'string' "
            "THEN CAST(metadata AS jsonb) ->> 'user' END"
        )
    tx.execute(
        db.sql(
            "INSERT INTO record_filters (deployment, dim, value, start_us, id, status, call_type) "
            "SELECT deployment, 'key', key_alias, start_us, id, status, call_type FROM records "
            "WHERE start_us < :b AND key_alias IS NOT NULL "
            "UNION ALL "
            "SELECT deployment, 'session', session_id, start_us, id, status, call_type FROM records "
            "WHERE start_us < :b AND session_id IS NOT NULL "
            "UNION ALL "
            "SELECT deployment, 'user', u, start_us, id, status, call_type FROM "
            f"(SELECT deployment, {user} AS u, start_us, id, status, call_type "
            "FROM records WHERE start_us < :b AND metadata LIKE '%\"user\"%') AS m WHERE u IS NOT NULL "
            "ORDER BY 1, 2, 3, 4, 5 ON CONFLICT DO NOTHING"
        ),
        {"b": int(row[0])},
    )
