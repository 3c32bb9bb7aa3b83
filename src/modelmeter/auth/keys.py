"""Virtual keys for /v1: created, listed and revoked at run time; only their hashes are stored.

Each key can carry limits: requests per minute, tokens per minute and a spend budget. Limits are
checked before the upstream is called; a call over a limit gets a 429 with Retry-After. Calls in
flight hold an estimate of their tokens and spend (``auth.reservations``) until their records are
stored, so concurrent calls cannot all pass a limit they jointly exceed.
Requests and tokens per minute are counted per process (with N workers, each enforces its share of
traffic); spend is kept in the database, added to by every writer, so the budget holds across them.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from modelmeter.auth.reservations import Reservations
from modelmeter.auth.secrets import key_hash, new_key
from modelmeter.storage.database import Database
from modelmeter.storage.row import RecordRow
from modelmeter.units import PICO, iso

if TYPE_CHECKING:
    from modelmeter.metering.record import CallRecord

_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
_COLS = "alias, key_hash, key_prefix, created_us, revoked_us, rpm_limit, tpm_limit, budget_pusd, spent_pusd"


class KeyError_(ValueError):
    """A key definition that cannot be used; the message says why."""


@dataclass
class VirtualKey:
    alias: str
    key_hash: str
    key_prefix: str
    created_us: int
    revoked_us: int | None
    rpm_limit: int | None
    tpm_limit: int | None
    budget_pusd: int | None
    spent_pusd: int

    def public(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "key_prefix": self.key_prefix,  # enough to tell keys apart, useless as a key
            "created": iso(self.created_us),
            "revoked": iso(self.revoked_us) if self.revoked_us else None,
            "rpm_limit": self.rpm_limit,
            "tpm_limit": self.tpm_limit,
            "budget_usd": self.budget_pusd / PICO if self.budget_pusd is not None else None,
            "spent_usd": self.spent_pusd / PICO,
        }


class LimitExceeded(Exception):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class KeyStore:
    def __init__(self, db: Database, refresh_s: float = 1.0) -> None:
        self._db = db
        self._refresh_s = refresh_s
        self._by_hash: dict[str, VirtualKey] = {}
        self._loaded = 0.0
        self._lock = threading.Lock()
        self._refreshing = threading.Event()
        self._requests: dict[str, deque[float]] = defaultdict(deque)
        self._tokens: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self.reservations = Reservations()

    # -- administration (API and CLI) ------------------------------------------------------
    def create(
        self, alias: str, *, rpm: int | None = None, tpm: int | None = None, budget_usd: float | str | None = None
    ) -> tuple[str, VirtualKey]:
        """A new key; the key itself is returned once and never stored."""
        if not isinstance(alias, str) or not _ALIAS.match(alias):
            raise KeyError_("'alias' must be 1-64 characters: letters, digits, ._:@-")
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise KeyError_(f"'{name}' must be a positive integer")
        budget = None
        if budget_usd is not None:
            try:
                budget = int(Decimal(str(budget_usd)) * PICO)
            except ArithmeticError:
                raise KeyError_("'budget_usd' must be a number") from None
            if budget <= 0:
                raise KeyError_("'budget_usd' must be positive")
        key = new_key("mm")
        vk = VirtualKey(alias, key_hash(key), key[:7], int(time.time() * 1e6), None, rpm, tpm, budget, 0)
        if self._db.fetchone("SELECT 1 FROM virtual_keys WHERE alias = :a", {"a": alias}):
            raise KeyError_(f"a key with alias {alias!r} already exists")
        self._db.execute(
            f"INSERT INTO virtual_keys ({_COLS}) VALUES (:alias, :key_hash, :key_prefix, :created_us, "
            ":revoked_us, :rpm_limit, :tpm_limit, :budget_pusd, :spent_pusd)",
            vk.__dict__,
        )
        self.load()
        return key, vk

    def list(self) -> list[VirtualKey]:
        return [VirtualKey(*r) for r in self._db.fetchall(f"SELECT {_COLS} FROM virtual_keys ORDER BY created_us")]

    def revoke(self, alias: str) -> bool:
        n = self._db.execute(
            "UPDATE virtual_keys SET revoked_us = :t WHERE alias = :a AND revoked_us IS NULL",
            {"t": int(time.time() * 1e6), "a": alias},
        )
        self.load()  # this process refuses it at once; others within refresh_s
        return n > 0

    # -- the request path ------------------------------------------------------------------
    def load(self) -> None:
        keys = {vk.key_hash: vk for vk in self.list() if vk.revoked_us is None}
        with self._lock:
            self._by_hash = keys
            self._loaded = time.monotonic()

    def lookup(self, key: str) -> VirtualKey | None:
        if time.monotonic() - self._loaded > self._refresh_s and not self._refreshing.is_set():
            # Keys revoked by another process are picked up within refresh_s, read off the event loop.
            self._refreshing.set()
            threading.Thread(target=self._refresh, daemon=True).start()
        return self._by_hash.get(key_hash(key))

    def _refresh(self) -> None:
        try:
            self.load()
        except Exception:  # the database is away: keep the keys we know
            self._loaded = time.monotonic()
        finally:
            self._refreshing.clear()

    def check_limits(self, vk: VirtualKey, rec: CallRecord | None = None, now: float | None = None) -> None:
        """Raise LimitExceeded if this call would go over one of the key's limits; else count it,
        and hold the estimate of ``rec`` against the key's tokens and budget until it is stored."""
        t = now if now is not None else time.monotonic()
        held_tokens, held_pusd = self.reservations.held(vk.alias, t)
        if vk.budget_pusd is not None and vk.spent_pusd + held_pusd >= vk.budget_pusd:
            if held_pusd and vk.spent_pusd < vk.budget_pusd:
                raise LimitExceeded(
                    f"Key '{vk.alias}' has its budget of ${vk.budget_pusd / PICO:g} "
                    "committed to calls in progress; try again shortly.",
                    1,
                )
            raise LimitExceeded(f"Key '{vk.alias}' has used its budget of ${vk.budget_pusd / PICO:g}.", 3600)
        reqs = self._requests[vk.alias]
        while reqs and reqs[0] <= t - 60:
            reqs.popleft()
        if vk.rpm_limit is not None and len(reqs) >= vk.rpm_limit:
            raise LimitExceeded(
                f"Key '{vk.alias}' is over its limit of {vk.rpm_limit} requests per minute.",
                max(int(reqs[0] + 60 - t) + 1, 1),
            )
        if vk.tpm_limit is not None:
            with self._lock:  # the writer thread adds to these
                toks = self._tokens[vk.alias]
                while toks and toks[0][0] <= t - 60:
                    toks.popleft()
                used = sum(n for _, n in toks)
                oldest = toks[0][0] if toks else t
            if used + held_tokens >= vk.tpm_limit:
                raise LimitExceeded(
                    f"Key '{vk.alias}' is over its limit of {vk.tpm_limit} tokens per minute.",
                    max(int(oldest + 60 - t) + 1, 1),
                )
        reqs.append(t)
        if rec is not None:
            tokens, pusd = self.reservations.estimate(rec, vk.tpm_limit is not None, vk.budget_pusd is not None)
            self.reservations.hold(rec.id, vk.alias, tokens, pusd, t)

    def observe(self, rows: Iterable[RecordRow]) -> None:
        """A recorder listener: count each stored batch's tokens (per minute) and add its spend to
        this process's copy of its keys (the writer added it in the database, in the transaction
        that stored the rows: ``storage.spend``)."""
        rows = list(rows)
        spend: dict[str, int] = defaultdict(int)
        now = time.monotonic()
        for r in rows:
            alias = r.get("key_alias")
            if not alias:
                continue
            if r["total_tokens"]:
                with self._lock:
                    self._tokens[alias].append((now, r["total_tokens"]))
            if r["spend_pusd"]:
                spend[alias] += r["spend_pusd"]
        for alias, pusd in spend.items():
            vk = next((k for k in self._by_hash.values() if k.alias == alias), None)
            if vk is not None:
                vk.spent_pusd += pusd
        # Counted for real now (tokens above, spend in the key): their estimates stop counting.
        self.reservations.settle([r["id"] for r in rows if r.get("key_alias")])
