"""Reservations against tpm and budget (issue #18 item 5), one piece at a time: the estimate, holding
and settling, and KeyStore.check_limits counting what is held. The end-to-end proof with 50 parallel
calls is tests/e2e/test_auth_limits_e2e.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import sqlite_url

from modelmeter.auth.keys import KeyStore, LimitExceeded
from modelmeter.auth.reservations import DEFAULT_OUTPUT_TOKENS, MAX_HOLD_S, Reservations, estimate_tokens
from modelmeter.config import Deployment
from modelmeter.metering.record import CallRecord
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.units import PICO

DEP = Deployment.from_mapping(
    {
        "name": "gpt",
        "model": "fake-model",
        "api_base": "http://upstream.invalid/v1",
        "price": {"input": 1000, "output": 2000},
    }
)


def rec(rid: str, body: dict[str, Any], call_type: str = "chat") -> CallRecord:
    return CallRecord(id=rid, deployment=DEP, model="gpt", call_type=call_type, start=0.0, request_body=body)


def chat(max_tokens: Any = 5, text: str = "hello there") -> dict[str, Any]:
    return {"model": "gpt", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}


def test_the_estimate_covers_prompt_and_the_output_asked_for() -> None:
    prompt, output = estimate_tokens(rec("a", chat()))
    assert output == 5 and prompt >= 3  # at least one token per word and the message framing
    long_prompt, _ = estimate_tokens(rec("a", chat(text="word " * 3000)))
    assert long_prompt >= 3000
    assert estimate_tokens(rec("a", chat(max_tokens=None)))[1] == DEFAULT_OUTPUT_TOKENS
    assert estimate_tokens(rec("a", chat(max_tokens="lots")))[1] == DEFAULT_OUTPUT_TOKENS  # bad input: no crash
    assert estimate_tokens(rec("a", {**chat(), "n": 3}))[1] == 15
    assert estimate_tokens(rec("a", {"model": "gpt", "input": [[1, 2, 3], [4]]}, "embedding")) == (4, 0)
    assert estimate_tokens(rec("a", {"model": "gpt", "messages": "not a list"}))[0] >= 0


def test_held_until_settled_and_never_forever() -> None:
    res = Reservations()
    tokens, pusd = res.estimate(rec("a", chat()), tokens=True, spend=True)
    assert tokens > 0 and pusd == (tokens - 5) * 1000 * PICO // 10**6 + 5 * 2000 * PICO // 10**6
    res.hold("a", "team", tokens, pusd, now=100.0)
    res.hold("b", "team", tokens, pusd, now=101.0)
    assert res.held("team", now=102.0) == (2 * tokens, 2 * pusd)
    assert res.held("other", now=102.0) == (0, 0)
    res.settle(["a", "unknown"])
    assert res.held("team", now=102.0) == (tokens, pusd)
    assert res.held("team", now=101.0 + MAX_HOLD_S + 1) == (0, 0)  # its record never came back


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    db = Database(sqlite_url(tmp_path / "k.db"))
    migrate(db)
    return KeyStore(db)


def test_calls_in_flight_count_against_tpm_and_budget(store: KeyStore) -> None:
    T0 = time.monotonic()  # the clock the store's reservations use
    _, vk = store.create("tpm", tpm=40)
    admitted = 0
    for i in range(10):  # ten calls at once: none has finished
        try:
            store.check_limits(vk, rec(f"t{i}", chat()), now=T0)
            admitted += 1
        except LimitExceeded as exc:
            assert "tokens per minute" in exc.message
    per_call = sum(estimate_tokens(rec("x", chat())))
    assert admitted == -(-40 // per_call)  # admitted while what is held stays under the limit
    # The records are stored: the real tokens count instead of the estimates.
    assert store.reservations.held("tpm", now=T0) == (admitted * per_call, 0)
    store.observe([{"id": f"t{i}", "key_alias": "tpm", "total_tokens": 10, "spend_pusd": 0} for i in range(admitted)])
    assert store.reservations.held("tpm", now=T0) == (0, 0)

    key, _ = store.create("budget", budget_usd=0.05)
    vk = store.lookup(key)  # the store's own record of the key, which observe() adds spend to
    assert vk is not None
    results = []
    for i in range(10):
        try:
            store.check_limits(vk, rec(f"b{i}", chat()), now=T0)
            results.append("ok")
        except LimitExceeded as exc:
            results.append(exc.message)
    assert results.count("ok") == 3, results  # $0.02 each, held: 0, 0.02, 0.04 < 0.05
    assert "in progress" in results[-1]
    assert store.reservations.held("budget", now=T0)[1] == 3 * int(0.02 * PICO)
    store.observe(
        [{"id": f"b{i}", "key_alias": "budget", "total_tokens": 10, "spend_pusd": int(0.015 * PICO)} for i in range(3)]
    )
    assert store.reservations.held("budget", now=T0) == (0, 0)
    assert vk.spent_pusd == int(0.045 * PICO)
    store.check_limits(vk, rec("b-last", chat()), now=T0 + 1)  # $0.045 < $0.05: one more
    store.observe([{"id": "b-last", "key_alias": "budget", "total_tokens": 10, "spend_pusd": int(0.015 * PICO)}])
    with pytest.raises(LimitExceeded, match="used its budget"):
        store.check_limits(vk, rec("b-over", chat()), now=T0 + 2)
