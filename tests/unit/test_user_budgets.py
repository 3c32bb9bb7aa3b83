"""Budgets per end user (budgets/users.py) one piece at a time: setting, the estimate held by calls
in flight, the spend added from stored rows, and the refusal. End to end: tests/e2e/test_user_budgets_e2e.py."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tests.helpers import sqlite_url

from modelmeter.auth.keys import LimitExceeded
from modelmeter.budgets.users import BudgetError, UserBudgets
from modelmeter.config import Deployment
from modelmeter.metering.record import CallRecord
from modelmeter.storage import spend
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.units import PICO

DEP = Deployment.from_mapping(
    {
        "name": "gpt",
        "model": "fake-model",
        "api_base": "http://upstream.invalid/v1",
        "price": {"input": 1000, "output": 1000},
    }
)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    db = Database(sqlite_url(tmp_path / "b.db"))
    migrate(db)
    return db


@pytest.fixture
def budgets(db: Database) -> UserBudgets:
    return UserBudgets(db, refresh_s=3600)


def stored(db: Database, budgets: UserBudgets, rows: list[dict[str, object]]) -> None:
    """What the writer does with a stored batch: its spend into the database with the rows
    (storage.spend), then the listener (this process's copy, reservations settled)."""
    with db.transaction() as tx:
        spend.add_rows(db, tx, rows)  # type: ignore[arg-type]
    budgets.observe(rows)  # type: ignore[arg-type]


def call(rid: str, max_tokens: int = 10) -> CallRecord:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens, "user": "alice"}
    return CallRecord(id=rid, deployment=DEP, model="gpt", call_type="chat", start=0.0, request_body=body)


def row(rid: str, user: str | None, spend_usd: float) -> dict[str, object]:
    return {
        "id": rid,
        "metadata": orjson.dumps({"user": user}).decode() if user else None,
        "spend_pusd": int(spend_usd * PICO),
    }


def test_budget_holds_and_settles(db: Database, budgets: UserBudgets) -> None:
    budgets.set("alice", 0.05)
    budgets.check("bob", call("x"))  # no budget: never limited
    budgets.check(None, call("y"))
    budgets.check("alice", call("a"))  # held: (2 + 4 + 10 tokens) x $1000/M = $0.016
    assert budgets.reservations.held("alice")[1] > 0
    stored(db, budgets, [row("a", "alice", 0.03), row("b", "bob", 1.0)])
    assert budgets.reservations.held("alice") == (0, 0)
    assert [b.public()["spent_usd"] for b in budgets.list()] == [0.03]
    budgets.check("alice", call("c", max_tokens=5000))  # $0.03 spent + ~$5 held: the next is refused
    with pytest.raises(LimitExceeded) as info:
        budgets.check("alice", call("d"))
    assert info.value.retry_after == 1  # committed to a call in progress, not spent
    stored(db, budgets, [row("c", "alice", 0.02)])
    with pytest.raises(LimitExceeded) as info:
        budgets.check("alice", call("e"))
    assert info.value.retry_after == 3600 and "$0.05" in info.value.message
    budgets.set("alice", 1)  # raised: the spend so far is kept
    assert budgets.list()[0].spent_pusd == int(0.05 * PICO)
    budgets.check("alice", call("f"))
    assert budgets.remove("alice") and not budgets.remove("alice")
    budgets.check("alice", call("g", max_tokens=10**6))


@pytest.mark.parametrize(("user", "budget"), [("", 1), ("x" * 257, 1), ("a", 0), ("a", -2), ("a", "lots")])
def test_bad_budgets(budgets: UserBudgets, user: str, budget: object) -> None:
    with pytest.raises(BudgetError):
        budgets.set(user, budget)  # type: ignore[arg-type]
