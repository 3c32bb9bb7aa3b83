"""Reservations against a virtual key's token-per-minute and budget limits.

Tokens and spend are only known once a call's record is priced and stored, long after the call was
let in: without more, 50 calls admitted at once all see the same unspent budget. So each call
admitted for a key with such a limit holds an estimate (its prompt, roughly counted, plus the
output it may produce: ``max_tokens``, else a default; priced at the deployment's rates) until its
record is stored and the real figures take its place. Admission compares what is used *and* held
with the limit, so concurrent calls cannot all pass a limit they jointly exceed: the overshoot is at
most the last admitted call's worth (per process).

All of it is in memory: the hot path never touches the database.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelmeter.metering.pricing import Pricer
from modelmeter.units import PICO

if TYPE_CHECKING:
    from modelmeter.metering.record import CallRecord

DEFAULT_OUTPUT_TOKENS = 512  # reserved for a call that sets no max_tokens
CHARS_PER_TOKEN = 3  # on the high side of tokens for English text (about 4 characters each)
MESSAGE_OVERHEAD = 4  # tokens of a chat message's framing
# A reservation whose record never came back (lost, or waiting in a spool for the database) stops
# counting after this long rather than holding the key forever.
MAX_HOLD_S = 300.0
RATE_SAMPLE = 1_000_000  # tokens priced to find a deployment's per-token rates


@dataclass(frozen=True, slots=True)
class Reservation:
    alias: str
    tokens: int
    pusd: int
    at: float  # monotonic


def estimate_tokens(rec: CallRecord) -> tuple[int, int]:
    """(prompt, output) tokens a call may use, counted cheaply from its parsed body."""
    body = rec.request_body if isinstance(rec.request_body, dict) else {}
    if rec.call_type == "chat":
        messages = body.get("messages")
        prompt = _size(messages) + MESSAGE_OVERHEAD * (len(messages) if isinstance(messages, list) else 0)
    elif rec.call_type == "completion":
        prompt = _size(body.get("prompt"))
    else:
        return _size(body.get("input")), 0
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    output = limit if type(limit) is int and limit >= 0 else DEFAULT_OUTPUT_TOKENS
    n = body.get("n")
    return prompt, output * (n if type(n) is int and 1 <= n <= 128 else 1)


def _size(x: Any, depth: int = 0) -> int:
    """Tokens of text (strings), token ids (integers) and content parts, estimated."""
    if isinstance(x, str):
        return len(x) // CHARS_PER_TOKEN + 1
    if depth > 8:
        return 0
    if isinstance(x, list):
        return sum(_size(v, depth + 1) for v in x)
    if isinstance(x, dict):
        return sum(_size(v, depth + 1) for v in x.values())
    return 1 if isinstance(x, int) else 0


class Reservations:
    """What admitted calls hold, per key alias, until their records are stored."""

    def __init__(self, pricer: Pricer | None = None) -> None:
        self._pricer = pricer
        self._lock = threading.Lock()  # the writer thread settles; the event loop reserves
        self._by_id: dict[str, Reservation] = {}
        self._tokens: dict[str, int] = defaultdict(int)
        self._pusd: dict[str, int] = defaultdict(int)
        self._rate_cache: dict[tuple[Any, ...], tuple[int, int, float]] = {}

    def estimate(self, rec: CallRecord, tokens: bool, spend: bool) -> tuple[int, int]:
        """(tokens, pico-USD) to hold for this call; each only if the key limits it."""
        if not tokens and not spend:
            return 0, 0
        prompt, output = estimate_tokens(rec)
        pusd = 0
        if spend:
            per_input, per_output = self._rates(rec)
            pusd = prompt * per_input + output * per_output
        return prompt + output, pusd

    def _rates(self, rec: CallRecord) -> tuple[int, int]:
        """pico-USD per input and per output token of the deployment, priced once an hour (a
        full pricing is ~25 us: too much for every call of the hot path)."""
        dep = rec.deployment
        key = (dep.provider, dep.model, dep.price)
        now = time.monotonic()
        cached = self._rate_cache.get(key)
        if cached is not None and cached[2] > now:
            return cached[0], cached[1]
        if self._pricer is None:
            self._pricer = Pricer()
        try:
            rates = [
                int(
                    self._pricer.cost(
                        provider=dep.provider,
                        model=dep.model,
                        prompt_tokens=p,
                        completion_tokens=c,
                        override=dep.price,
                        at=rec.start,
                    ).spend
                    * PICO
                    / RATE_SAMPLE
                )
                for p, c in ((RATE_SAMPLE, 0), (0, RATE_SAMPLE))
            ]
        except Exception:  # unpriced: the budget is checked against recorded spend alone
            rates = [0, 0]
        if len(self._rate_cache) > 1000:
            self._rate_cache.clear()
        self._rate_cache[key] = (rates[0], rates[1], now + 3600.0)
        return rates[0], rates[1]

    def held(self, alias: str, now: float | None = None) -> tuple[int, int]:
        """(tokens, pico-USD) held for this key by calls not yet stored."""
        t = now if now is not None else time.monotonic()
        with self._lock:
            while self._by_id:  # oldest first (held in arrival order)
                rid, r = next(iter(self._by_id.items()))
                if t - r.at <= MAX_HOLD_S:
                    break
                self._drop(rid)
            return self._tokens.get(alias, 0), self._pusd.get(alias, 0)

    def hold(self, rec_id: str, alias: str, tokens: int, pusd: int, now: float | None = None) -> None:
        if tokens <= 0 and pusd <= 0:
            return
        with self._lock:
            self._by_id[rec_id] = Reservation(alias, tokens, pusd, now if now is not None else time.monotonic())
            self._tokens[alias] += tokens
            self._pusd[alias] += pusd

    def settle(self, rec_ids: list[str]) -> None:
        """The records of these calls are stored (their real figures count now): release their holds."""
        with self._lock:
            for rid in rec_ids:
                self._drop(rid)

    def _drop(self, rec_id: str) -> None:
        r = self._by_id.pop(rec_id, None)
        if r is None:
            return
        self._tokens[r.alias] -= r.tokens
        self._pusd[r.alias] -= r.pusd
        if self._tokens[r.alias] <= 0 and self._pusd[r.alias] <= 0:
            del self._tokens[r.alias], self._pusd[r.alias]
