"""Alert values read from the rollups equal the figures computed from the records they sum, on both
databases; the alert tables' compare-and-set and history work on both."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from modelmeter.alerts import payload, store
from modelmeter.alerts.measure import Measurement, bounds, measure
from modelmeter.alerts.rules import AlertRule, parse_rule
from modelmeter.alerts.state import RuleState, step
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from modelmeter.units import PICO

from .test_storage import DEP, make_row

NOW = 1_780_000_000.0  # a fixed "now" (fake clock), in seconds
OTHER = replace(DEP, name="other")


def rank(values: list[float], q: float) -> float | None:
    values = sorted(values)
    return values[max(math.ceil(q * len(values)), 1) - 1] if values else None


@pytest.fixture
def rows(db: Database) -> list[dict]:
    rng = random.Random(16)
    out = [
        make_row(
            NOW - rng.uniform(0, 3 * 3600),  # three hours back: windows of 5 min to 2 h cut through them
            status="error" if rng.random() < 0.2 else "success",
            latency=rng.lognormvariate(5, 1),
            prompt=rng.randint(1, 3000),
            completion=rng.randint(0, 900),
            dep=DEP if rng.random() < 0.7 else OTHER,
        )
        for _ in range(1500)
    ]
    insert_rows(db, out)
    return out


@pytest.mark.parametrize("window", ["5m", "17m", "1h", "2h"])
@pytest.mark.parametrize("scope", ["deployment", "global"])
def test_values_equal_the_records_figures(db: Database, rows: list[dict], window: str, scope: str) -> None:
    now_us = int(NOW * 1e6)
    target = {"deployment": "gpt"} if scope == "deployment" else {}

    def value(kind: str) -> float | None:
        rule = parse_rule({"name": "r", "kind": kind, "threshold": 1, "window": window, **target})
        return measure(db, rule, now_us).value

    start, end = bounds(parse_rule({"name": "r", "kind": "spend", "threshold": 1, "window": window}).window_s, now_us)
    assert start % 60_000_000 == 0 and start <= now_us - 60_000_000 * int(window[:-1]) * (60 if "h" in window else 1)
    inside = [r for r in rows if start <= r["start_us"] < end and (scope == "global" or r["deployment"] == "gpt")]
    assert len(inside) > 10
    assert round(value("spend") * PICO) == sum(r["spend_pusd"] for r in inside)  # type: ignore[operator]
    assert value("no_traffic") == len(inside)
    errors = sum(r["status"] != "success" for r in inside)
    assert value("error_rate") == pytest.approx(100 * errors / len(inside), abs=1e-4)
    # percentiles from the histograms: within half a bin (0.5 %) of the exact nearest rank
    assert value("latency_p95") == pytest.approx(rank([r["latency_ms"] for r in inside], 0.95), rel=0.006)
    assert value("ttft_p95") == pytest.approx(rank([r["ttft_ms"] for r in inside], 0.95), rel=0.006)


def test_an_empty_window_has_no_rate_and_no_traffic(db: Database) -> None:
    now_us = int(NOW * 1e6)
    for kind, want in (("error_rate", None), ("latency_p95", None), ("ttft_p95", None), ("no_traffic", 0.0)):
        rule = parse_rule({"name": "r", "kind": kind, "threshold": 1, "deployment": "gpt"})
        assert measure(db, rule, now_us).value == want


def test_key_budget_share(db: Database) -> None:
    db.execute(
        "INSERT INTO virtual_keys (alias, key_hash, key_prefix, created_us, budget_pusd, spent_pusd) "
        "VALUES ('team-a', 'h', 'mm-', 0, :b, :s)",
        {"b": 10 * PICO, "s": 8 * PICO + PICO // 2},
    )
    rule = parse_rule({"name": "b", "kind": "key_budget", "key": "team-a", "threshold": 80})
    m = measure(db, rule, int(NOW * 1e6))
    assert m.value == 85.0 and rule.breached(m.value)
    none = parse_rule({"name": "b", "kind": "key_budget", "key": "nobody", "threshold": 80})
    assert measure(db, none, 0).value is None


def test_state_changes_once_and_history(db: Database) -> None:
    rule = parse_rule({"name": "spend", "kind": "spend", "threshold": 1, "window": "1h", "for": "1m"})
    old = store.state_of(db, "spend", 0)
    assert old == RuleState("ok", 0)
    pending, tr = step(old, True, 2.0, 10_000_000, 60_000_000)
    assert tr is not None and store.change(db, rule, old, pending, tr, None) is not None
    assert store.change(db, rule, old, pending, tr, None) is None  # another process was first
    firing, tr = step(pending, True, 3.0, 80_000_000, 60_000_000)
    assert tr is not None and tr.change == "firing"
    event = store.change(db, rule, pending, firing, tr, {"status": "firing"})
    assert event is not None
    store.add_attempt(db, store.Attempt(event, "spend", 1, 81_000_000, 500, "HTTP 500", 3.5, False))
    store.add_attempt(db, store.Attempt(event, "spend", 2, 82_000_000, 200, None, 2.0, True))
    got = store.history(db, "spend")["data"]
    assert [e["status"] for e in got] == ["firing", "pending"]
    assert [(d["attempt"], d["ok"], d["http_status"]) for d in got[0]["deliveries"]] == [
        (1, False, 500),
        (2, True, 200),
    ]
    assert got[0]["value"] == 3.0 and got[0]["started_at"] == "1970-01-01T00:00:10.000000Z"
    assert store.states(db)["spend"][0].state == "firing"
    assert store.add_rule(db, rule, 0) and not store.add_rule(db, rule, 0)
    assert [r.name for r in store.api_rules(db)] == ["spend"]
    assert store.deleted(db, {"spend"}) == []
    assert store.delete_rule(db, "spend") and not store.delete_rule(db, "spend")
    # The rule and its state are gone; its history is kept, with the deliveries, and listed as deleted.
    assert store.history(db, "spend")["data"] == got and "spend" not in store.states(db)
    assert store.deleted(db, set()) == [{"name": "spend", "changes": 2, "last_change": "1970-01-01T00:01:20.000000Z"}]
    assert store.api_rules(db) == []


def test_chart_marks_are_the_deployments_and_global_changes(db: Database) -> None:
    """The Usage tab's markers: firing and resolved changes in the window of the deployment's rules
    and the global ones; not another deployment's, not a key's, not pending ones."""
    rules = [
        parse_rule({"name": "dep-spend", "kind": "spend", "deployment": DEP.name, "threshold": 1}),
        parse_rule({"name": "all-errors", "kind": "error_rate", "threshold": 5, "for": "1m"}),
        parse_rule({"name": "other-spend", "kind": "spend", "deployment": "other", "threshold": 1}),
        parse_rule({"name": "key-80", "kind": "key_budget", "key": "team", "threshold": 80}),
    ]

    def move(rule: AlertRule, breached: bool, at_s: int) -> None:
        old = store.state_of(db, rule.name, 0)
        new, tr = step(old, breached, 9.0, at_s * 1_000_000, int(rule.for_s * 1e6))
        assert tr is not None
        m = Measurement(9.0, 0, at_s * 1_000_000)
        assert store.change(db, rule, old, new, tr, payload.body(rule, tr, m, "http://x") if tr.notify else None)

    for rule in rules:
        move(rule, True, 100)  # all-errors: pending (not a mark) ...
    move(rules[1], True, 200)  # ... then firing
    move(rules[0], False, 300)  # dep-spend resolves
    got = store.marks(db, DEP.name, 0, 1_000_000_000)
    assert [(m["rule"], m["status"], m["at"]) for m in got] == [
        ("dep-spend", "firing", "1970-01-01T00:01:40.000000Z"),
        ("all-errors", "firing", "1970-01-01T00:03:20.000000Z"),
        ("dep-spend", "resolved", "1970-01-01T00:05:00.000000Z"),
    ]
    assert got[0]["scope"] == "deployment" and got[1]["scope"] == "global" and got[0]["value"] == 9.0
    assert [m["rule"] for m in store.marks(db, DEP.name, 200_000_000, 300_000_000)] == ["all-errors"]  # end excluded
    assert [m["rule"] for m in store.marks(db, "other", 0, 10**12)] == ["other-spend", "all-errors"]
