"""Budgets per end user: the request's ``user`` field, limited like a virtual key's budget.

A budget is set through /api/user-budgets and counts spend from then on. A call naming a user over
budget gets a 429 with Retry-After before any upstream is asked, as a key over its budget does; calls
in flight hold an estimate of their spend (``auth.reservations``) until their records are stored.
Spend is kept in the database, added by every writer with the records it stores (``storage.spend``);
the budgets and the spend are re-read every ``refresh_s`` off the event loop, so the hot path only
looks in a dict.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from modelmeter.auth.keys import LimitExceeded
from modelmeter.auth.reservations import Reservations
from modelmeter.storage.database import Database
from modelmeter.storage.row import RecordRow
from modelmeter.storage.top_rollups import user_of
from modelmeter.units import PICO, iso

if TYPE_CHECKING:
    from modelmeter.metering.record import CallRecord

MAX_USER_CHARS = 256
RETRY_AFTER_S = 3600  # a spent budget stays spent until someone raises it


class BudgetError(ValueError):
    """A budget that cannot be set; the message says why."""


@dataclass
class UserBudget:
    user: str
    budget_pusd: int
    spent_pusd: int
    created_us: int

    def public(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "budget_usd": self.budget_pusd / PICO,
            "spent_usd": self.spent_pusd / PICO,
            "since": iso(self.created_us),
        }


class UserBudgets:
    def __init__(self, db: Database, refresh_s: float = 1.0) -> None:
        self._db = db
        self._refresh_s = refresh_s
        self._by_user: dict[str, UserBudget] = {}
        self._loaded = 0.0
        self._refreshing = threading.Event()
        self.reservations = Reservations()

    # -- administration (API) --------------------------------------------------------------
    def set(self, user: str, budget_usd: float | str) -> UserBudget:
        """Set or change a user's budget (the spend so far is kept when it changes)."""
        if not isinstance(user, str) or not user.strip() or len(user) > MAX_USER_CHARS:
            raise BudgetError(f"'user' must be 1-{MAX_USER_CHARS} characters")
        try:
            budget = int(Decimal(str(budget_usd)) * PICO)
        except (ArithmeticError, InvalidOperation):
            raise BudgetError("'budget_usd' must be a number") from None
        if budget <= 0:
            raise BudgetError("'budget_usd' must be positive")
        params = {"u": user, "b": budget, "t": int(time.time() * 1e6)}
        if not self._db.execute("UPDATE user_budgets SET budget_pusd = :b WHERE end_user = :u", params):
            self._db.execute(
                "INSERT INTO user_budgets (end_user, budget_pusd, spent_pusd, created_us) VALUES (:u, :b, 0, :t)",
                params,
            )
        self.load()
        return self._by_user[user]

    def remove(self, user: str) -> bool:
        n = self._db.execute("DELETE FROM user_budgets WHERE end_user = :u", {"u": user})
        self.load()
        return n > 0

    def list(self) -> list[UserBudget]:
        rows = self._db.fetchall(
            "SELECT end_user, budget_pusd, spent_pusd, created_us FROM user_budgets ORDER BY end_user"
        )
        return [UserBudget(*r) for r in rows]

    def load(self) -> None:
        self._by_user = {b.user: b for b in self.list()}
        self._loaded = time.monotonic()

    def _refresh(self) -> None:
        try:
            self.load()
        except Exception:  # the database is away: keep what we know
            self._loaded = time.monotonic()
        finally:
            self._refreshing.clear()

    # -- the request path ------------------------------------------------------------------
    def check(self, user: Any, rec: CallRecord, now: float | None = None) -> None:
        """Raise LimitExceeded if ``user`` has a budget this call would go over; else hold the
        call's estimated spend against it until its record is stored."""
        if time.monotonic() - self._loaded > self._refresh_s and not self._refreshing.is_set():
            self._refreshing.set()  # budgets and spend of other processes, read off the event loop
            threading.Thread(target=self._refresh, daemon=True).start()
        if not isinstance(user, str):
            return
        budget = self._by_user.get(user)
        if budget is None:
            return
        t = now if now is not None else time.monotonic()
        _, held = self.reservations.held(user, t)
        if budget.spent_pusd + held >= budget.budget_pusd:
            limit = f"${budget.budget_pusd / PICO:g}"
            if held and budget.spent_pusd < budget.budget_pusd:
                raise LimitExceeded(f"User '{user}' has the budget of {limit} committed to calls in progress.", 1)
            raise LimitExceeded(f"User '{user}' has used the budget of {limit}.", RETRY_AFTER_S)
        _, pusd = self.reservations.estimate(rec, False, True)
        self.reservations.hold(rec.id, user, 0, pusd, t)

    # -- the writer thread -----------------------------------------------------------------
    def observe(self, rows: Iterable[RecordRow]) -> None:
        """A recorder listener: add each stored call's spend to this process's copy of its user's
        budget (the writer added it in the database with the rows: ``storage.spend``), and release
        its reservation."""
        if not self._by_user:
            return
        spend: dict[str, int] = defaultdict(int)
        settled: list[str] = []
        for r in rows:
            user = user_of(r.get("metadata"))
            if user not in self._by_user:
                continue
            settled.append(r["id"])
            if r["spend_pusd"]:
                spend[user] += r["spend_pusd"]
        for user, pusd in spend.items():
            budget = self._by_user.get(user)
            if budget is not None:
                budget.spent_pusd += pusd
        self.reservations.settle(settled)
