"""A key's and a user's spend are added in the transaction that stores the records (storage/spend.py),
on SQLite and PostgreSQL: exactly the records' spend, once, or not at all if the batch is not stored."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from modelmeter.auth.keys import KeyStore
from modelmeter.budgets.users import UserBudgets
from modelmeter.storage import spend
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows

from .test_storage import make_row


def rows_for(n: int, t0: float) -> list[dict[str, Any]]:
    """``n`` priced rows: keys k1 / k2 / a key never made / none, users alice / bob / none."""
    rows = []
    for i in range(n):
        row = make_row(t0 + i * 0.01, prompt=100 + i, completion=7 * i)
        row["key_alias"] = ("k1", "k2", "ghost", None)[i % 4]
        user = ("alice", "bob", None)[i % 3]
        row["metadata"] = orjson.dumps({"user": user, "tags": ["x"]}).decode() if user else None
        rows.append(row)
    return rows


def spent(db: Database) -> dict[str, int]:
    keys = db.fetchall("SELECT alias, spent_pusd FROM virtual_keys")
    users = db.fetchall("SELECT end_user, spent_pusd FROM user_budgets")
    return {str(k): int(v) for k, v in keys} | {f"user:{u}": int(v) for u, v in users}


def from_records(db: Database) -> dict[str, int]:
    """The same figures summed from the stored records themselves."""
    sums = {"k1": 0, "k2": 0, "user:alice": 0}
    for alias, meta, pusd in db.fetchall("SELECT key_alias, metadata, spend_pusd FROM records"):
        if alias in sums:
            sums[alias] += pusd
        if meta and orjson.loads(meta).get("user") == "alice":
            sums["user:alice"] += pusd
    return sums


@pytest.fixture
def budgeted(db: Database) -> Database:
    KeyStore(db).create("k1")
    KeyStore(db).create("k2")
    UserBudgets(db).set("alice", 100)  # bob has no budget: his spend is kept nowhere but his records
    return db


def test_spend_is_the_stored_records_spend_once(budgeted: Database) -> None:
    db = budgeted
    rows = rows_for(40, time.time() - 60)
    assert all(r["spend_pusd"] > 0 for r in rows)
    insert_rows(db, rows[:25])
    assert spent(db) == from_records(db) and spent(db)["k1"] > 0 and spent(db)["user:alice"] > 0
    # Stored again (a spool re-drained, a commit that failed and landed): nothing counts twice;
    # the rows new to the database count once.
    insert_rows(db, rows, retry=True)
    assert spent(db) == from_records(db)
    assert spent(db)["k2"] == sum(r["spend_pusd"] for r in rows if r["key_alias"] == "k2")
    assert db.fetchone("SELECT COUNT(*) FROM virtual_keys WHERE alias = 'ghost'") == (0,)


def test_a_batch_not_stored_adds_no_spend(budgeted: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    db = budgeted
    real = spend.add_rows

    def then_fail(*args: Any) -> None:  # the spend added, then the transaction fails before its commit
        real(*args)
        raise ConnectionError("connection lost at commit")

    monkeypatch.setattr(spend, "add_rows", then_fail)
    with pytest.raises(ConnectionError):
        insert_rows(db, rows_for(12, time.time() - 60))
    assert db.fetchone("SELECT COUNT(*) FROM records") == (0,)
    assert spent(db) == {"k1": 0, "k2": 0, "user:alice": 0}


def test_spend_without_a_key_or_a_budget_stays_in_its_records_only(db: Database) -> None:
    rows = rows_for(9, time.time() - 60)
    insert_rows(db, rows)
    assert spent(db) == {} and db.fetchone("SELECT COUNT(*) FROM records") == (9,)
