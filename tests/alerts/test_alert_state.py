"""The alert state machine and the evaluation loop with a fake clock: pending → firing only after
``for``; resolved; exactly one notification per state change, whatever the number of evaluations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from modelmeter.alerts import store
from modelmeter.alerts.engine import AlertEngine
from modelmeter.alerts.measure import Measurement
from modelmeter.alerts.rules import AlertRule, RuleError, parse_rule
from modelmeter.alerts.state import RuleState, step
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate

S = 1_000_000


def test_breach_is_pending_until_for_has_passed() -> None:
    st = RuleState()
    st, tr = step(st, True, 9.0, 100 * S, 30 * S)
    assert st.state == "pending" and tr is not None and tr.change == "pending" and not tr.notify
    st, tr = step(st, True, 9.0, 129 * S, 30 * S)
    assert st.state == "pending" and tr is None
    st, tr = step(st, True, 9.0, 130 * S, 30 * S)
    assert st.state == "firing" and tr is not None and tr.notify and tr.started_us == 100 * S
    st, tr = step(st, True, 9.0, 160 * S, 30 * S)
    assert st.state == "firing" and tr is None
    st, tr = step(st, False, 1.0, 190 * S, 30 * S)
    assert st.state == "ok" and tr is not None and tr.change == "resolved" and tr.notify
    assert tr.started_us == 100 * S and st.last_fired_us == 130 * S


def test_a_spike_shorter_than_for_never_fires() -> None:
    st, tr = step(RuleState(), True, 9.0, 0, 30 * S)
    st, tr = step(st, False, 0.0, 10 * S, 30 * S)
    assert st.state == "ok" and tr is not None and tr.change == "cleared" and not tr.notify


def test_for_zero_fires_at_once() -> None:
    st, tr = step(RuleState(), True, 9.0, 5 * S, 0)
    assert st.state == "firing" and tr is not None and tr.change == "firing"


def test_rule_comparisons_and_no_data() -> None:
    spend = parse_rule({"name": "s", "kind": "spend", "threshold": 5, "window": "1h"})
    assert spend.scope == "global" and spend.breached(5.01) and not spend.breached(5.0)
    assert not spend.breached(None)
    budget = parse_rule({"name": "b", "kind": "key_budget", "key": "team-a", "threshold": 80})
    assert budget.scope == "key" and budget.breached(80.0) and not budget.breached(79.9)
    dead = parse_rule({"name": "d", "kind": "no_traffic", "deployment": "gpt", "window": "10m"})
    assert dead.threshold == 0 and dead.breached(0.0) and not dead.breached(1.0)


@pytest.mark.parametrize(
    ("definition", "param"),
    [
        ({"name": "x", "kind": "nope"}, "kind"),
        ({"name": "x", "kind": "spend"}, "threshold"),
        ({"name": "x", "kind": "key_budget", "threshold": 80}, "key"),
        ({"name": "x", "kind": "key_budget", "key": "k", "threshold": 180}, "threshold"),
        ({"name": "x", "kind": "spend", "threshold": 1, "webhook": "ftp://h/x"}, "webhook"),
        ({"name": "x", "kind": "spend", "threshold": 1, "window": "soon"}, "window"),
        ({"name": "x", "kind": "spend", "threshold": 1, "format": "xml"}, "format"),
        ({"name": "x", "kind": "spend", "threshold": 1, "colour": "red"}, "colour"),
    ],
)
def test_bad_rules_name_the_field(definition: dict[str, Any], param: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(definition)
    assert info.value.param == param


def test_webhook_url_is_never_shown() -> None:
    url = "https://hooks.example.com/services/T000/B000/XXXXsecret"
    rule = parse_rule({"name": "x", "kind": "spend", "threshold": 1, "webhook": url})
    assert rule.public()["webhook"] == "hooks.example.com"
    assert "secret" not in repr(rule) and "secret" not in str(rule.public())


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, rule: AlertRule, event_id: str, body: dict[str, Any]) -> None:
        self.sent.append(body)


def test_engine_sends_exactly_one_notification_per_change(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    migrate(db)
    rule = parse_rule(
        {"name": "errs", "kind": "error_rate", "deployment": "gpt", "threshold": 50, "window": "5m", "for": "30s"}
    )
    clock = [1_000.0]
    values: list[float | None] = []

    def fake_measure(db: Database, r: AlertRule, now_us: int) -> Measurement:
        return Measurement(values[-1], now_us - 300 * S, now_us)

    notifier = FakeNotifier()
    engine = AlertEngine(
        db,
        [rule],
        notifier,
        base_url="http://mm.test",
        clock=lambda: clock[0],
        measure_fn=fake_measure,  # type: ignore[arg-type]
    )

    def tick(value: float | None, advance: float = 10.0) -> int:
        values.append(value)
        n = asyncio.run(engine.tick())
        clock[0] += advance
        return n

    assert tick(80.0) == 0  # pending
    assert tick(90.0) == 0 and tick(85.0) == 0  # 10 s, 20 s: still pending
    assert tick(70.0) == 1  # 30 s: firing
    assert [tick(75.0) for _ in range(5)] == [0] * 5  # firing stays quiet
    assert tick(10.0) == 1  # resolved
    assert [tick(None) for _ in range(3)] == [0] * 3  # no calls: nothing to say
    assert [b["status"] for b in notifier.sent] == ["firing", "resolved"]
    firing, resolved = notifier.sent
    assert firing["value"] == 70.0 and firing["threshold"] == 50.0 and firing["rule"] == "errs"
    assert firing["started_at"] == resolved["started_at"]
    assert firing["link"].startswith("http://mm.test/models/gpt?start=") and "status=error" in firing["link"]
    assert resolved["value"] == 10.0 and resolved["resolved_at"] is not None
    history = store.history(db, "errs")["data"]
    assert [e["status"] for e in history] == ["resolved", "firing", "pending"]


def test_two_processes_notify_once(tmp_path: Path) -> None:
    """Two workers that both saw "ok" and both decide to fire: the compare-and-set lets one of them
    record the change (and notify); the other gets None."""
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    migrate(db)
    rule = parse_rule({"name": "spend", "kind": "spend", "threshold": 1, "window": "1h"})
    old = store.state_of(db, "spend", 5_000 * S)
    new, tr = step(old, True, 2.0, 5_001 * S, 0)
    assert tr is not None
    first = store.change(db, rule, old, new, tr, {"status": "firing"})
    second = store.change(db, rule, old, new, tr, {"status": "firing"})
    assert first is not None and second is None
    assert [e["status"] for e in store.history(db, "spend")["data"]] == ["firing"]
