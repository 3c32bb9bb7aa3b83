"""A stored call's spend added to its virtual key and its end user's budget, in the transaction that
stores its record (``records.insert_rows``), so the two cannot disagree.

Added after the commit instead (as recorder listeners, until this module), a process that died
between the two lost that batch's spend, and a batch stored again from a spool could add it twice.
Here a record's spend is added exactly when the record is: the writer only adds the rows it inserts.
The gateways' copies in memory (``auth.keys``, ``budgets.users``) are re-read from these columns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from modelmeter.storage.database import Database
from modelmeter.storage.row import RecordRow
from modelmeter.storage.top_rollups import user_of

__all__ = ["add_rows"]


def add_rows(db: Database, tx: Any, rows: Sequence[RecordRow]) -> None:
    """Add the spend of ``rows`` (all new to the database) to their keys and budgeted users."""
    by_key: dict[str, int] = defaultdict(int)
    by_user: dict[str, int] = defaultdict(int)
    for r in rows:
        pusd = r["spend_pusd"]
        if not pusd:
            continue
        if alias := r.get("key_alias"):
            by_key[alias] += pusd
        if user := user_of(r["metadata"]):  # ("": none; no budget has that name)
            by_user[user] += pusd
    if by_key:
        _add(db, tx, "virtual_keys", "alias", by_key)
    # Most users have no budget, and most deployments none at all: one look spares the updates.
    if by_user and tx.execute(db.sql("SELECT 1 FROM user_budgets LIMIT 1")).fetchone():
        _add(db, tx, "user_budgets", "end_user", by_user)


def _add(db: Database, tx: Any, table: str, column: str, spend: dict[str, int]) -> None:
    names = sorted(spend)
    if db.dialect == "sqlite":  # one writer at a time; executemany loops in C
        db.executemany(
            tx,
            f"UPDATE {table} SET spent_pusd = spent_pusd + :s WHERE {column} = :n",
            [{"n": n, "s": spend[n]} for n in names],
        )
        return
    # PostgreSQL: the rows locked in one order (as the rollups' are), so two writers adding to the
    # same keys wait for each other rather than deadlock; then updated, if any exist, in one statement.
    names = [
        n
        for (n,) in tx.execute(
            f'SELECT {column} FROM {table} WHERE {column} = ANY(%s::text[]) ORDER BY {column} COLLATE "C" FOR UPDATE',
            [names],
        ).fetchall()
    ]
    if not names:
        return
    tx.execute(
        f"UPDATE {table} AS t SET spent_pusd = t.spent_pusd + d.s "
        f"FROM unnest(%s::text[], %s::bigint[]) AS d(n, s) WHERE t.{column} = d.n",
        [names, [spend[n] for n in names]],
    )
