"""The alert tables (migration 0012): API rules, each rule's state, its changes and delivery attempts.

A state change is a compare-and-set on the rule's ``alert_state`` row, in the same transaction as its
event: with several processes on one database, only the one whose update matched notifies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from modelmeter.alerts.rules import AlertRule, RuleError, parse_rule
from modelmeter.alerts.state import RuleState, Transition
from modelmeter.storage.database import Database
from modelmeter.units import iso


@dataclass(frozen=True)
class Attempt:
    event_id: str
    name: str
    attempt: int
    at_us: int
    http_status: int | None
    error: str | None  # the exception's kind, never its text (which may hold the URL)
    duration_ms: float
    ok: bool


def api_rules(db: Database) -> list[AlertRule]:
    rules = []
    for (definition,) in db.fetchall("SELECT definition FROM alert_rules ORDER BY name"):
        try:
            rules.append(parse_rule(orjson.loads(definition), source="api"))
        except RuleError:
            continue  # a rule an older or newer version stored that this one cannot read: not evaluated
    return rules


def add_rule(db: Database, rule: AlertRule, now_us: int) -> bool:
    """False if an API rule of that name exists."""
    n = db.execute(
        "INSERT INTO alert_rules (name, definition, created_us) VALUES (:n, :d, :t) ON CONFLICT (name) DO NOTHING",
        {"n": rule.name, "d": orjson.dumps(rule.definition()).decode(), "t": now_us},
    )
    return n == 1


def delete_rule(db: Database, name: str) -> bool:
    """Remove an API rule and its state; its history (changes and deliveries) is kept, listed by
    ``deleted`` (a new rule of that name starts from "ok" and carries that history on)."""
    with db.transaction() as tx:
        n = tx.execute(db.sql("DELETE FROM alert_rules WHERE name = :n"), {"n": name}).rowcount
        if n:
            tx.execute(db.sql("DELETE FROM alert_state WHERE name = :n"), {"n": name})
    return bool(n)


def deleted(db: Database, current: set[str]) -> list[dict[str, Any]]:
    """Rules that have a history but are no longer defined (deleted through the API, or removed from
    the config), the most recently changed first."""
    rows = db.fetchall("SELECT name, COUNT(*), MAX(at_us) FROM alert_events GROUP BY name")
    gone = [(str(r[0]), int(r[1]), int(r[2])) for r in rows if r[0] not in current]
    gone.sort(key=lambda r: (-r[2], r[0]))
    return [{"name": name, "changes": count, "last_change": iso(at)} for name, count, at in gone]


_STATE_COLS = "state, since_us, value, last_fired_us"


def state_of(db: Database, name: str, now_us: int) -> RuleState:
    """The rule's stored state; a new rule's row is made ("ok") on first sight."""
    select = f"SELECT {_STATE_COLS} FROM alert_state WHERE name = :n"
    row = db.fetchone(select, {"n": name})
    if row is None:
        db.execute(
            "INSERT INTO alert_state (name, state, since_us, checked_us) VALUES (:n, 'ok', :t, :t) "
            "ON CONFLICT (name) DO NOTHING",
            {"n": name, "t": now_us},
        )
        row = db.fetchone(select, {"n": name})
    assert row is not None
    return RuleState(row[0], int(row[1]), row[2], row[3])


def states(db: Database) -> dict[str, tuple[RuleState, int]]:
    rows = db.fetchall(f"SELECT name, {_STATE_COLS}, checked_us FROM alert_state")
    return {r[0]: (RuleState(r[1], int(r[2]), r[3], r[4]), int(r[5])) for r in rows}


def keep_value(db: Database, name: str, state: RuleState, now_us: int) -> None:
    db.execute(
        "UPDATE alert_state SET value = :v, checked_us = :t WHERE name = :n AND state = :s",
        {"v": state.value, "t": now_us, "n": name, "s": state.state},
    )


def change(
    db: Database, rule: AlertRule, old: RuleState, new: RuleState, tr: Transition, body: dict[str, Any] | None
) -> str | None:
    """Move the rule from ``old`` to ``new`` and record the event; the event's id, or None if another
    process changed the state first (then it, not this one, notifies)."""
    event_id = uuid.uuid4().hex
    with db.transaction() as tx:
        moved = tx.execute(
            db.sql(
                "UPDATE alert_state SET state = :s, since_us = :t, value = :v, last_fired_us = :f, checked_us = :now "
                "WHERE name = :n AND state = :os AND since_us = :ot"
            ),
            {
                "s": new.state,
                "t": new.since_us,
                "v": new.value,
                "f": new.last_fired_us,
                "now": tr.at_us,
                "n": rule.name,
                "os": old.state,
                "ot": old.since_us,
            },
        ).rowcount
        if moved != 1:
            return None
        tx.execute(
            db.sql(
                "INSERT INTO alert_events (id, name, status, value, threshold, started_us, at_us, body) "
                "VALUES (:id, :n, :s, :v, :th, :st, :at, :b)"
            ),
            {
                "id": event_id,
                "n": rule.name,
                "s": tr.change,
                "v": new.value,
                "th": rule.threshold,
                "st": tr.started_us,
                "at": tr.at_us,
                "b": orjson.dumps(body).decode() if body is not None else None,
            },
        )
    return event_id


def add_attempt(db: Database, a: Attempt) -> None:
    db.execute(
        "INSERT INTO alert_deliveries (id, event_id, name, attempt, at_us, http_status, error, duration_ms, ok) "
        "VALUES (:id, :e, :n, :a, :t, :h, :err, :d, :ok)",
        {
            "id": uuid.uuid4().hex,
            "e": a.event_id,
            "n": a.name,
            "a": a.attempt,
            "t": a.at_us,
            "h": a.http_status,
            "err": a.error,
            "d": a.duration_ms,
            "ok": int(a.ok),
        },
    )


def history(db: Database, name: str, limit: int = 100) -> dict[str, Any]:
    """The rule's newest state changes, each with its delivery attempts (oldest attempt first)."""
    events = db.fetchall(
        "SELECT id, status, value, threshold, started_us, at_us, body FROM alert_events WHERE name = :n "
        "ORDER BY at_us DESC, id LIMIT :l",
        {"n": name, "l": limit},
    )
    attempts: dict[str, list[dict[str, Any]]] = {}
    if events:
        rows = db.fetchall(
            "SELECT event_id, attempt, at_us, http_status, error, duration_ms, ok FROM alert_deliveries "
            "WHERE name = :n AND at_us >= :a ORDER BY at_us, attempt",
            {"n": name, "a": min(int(e[5]) for e in events)},
        )
        for r in rows:
            attempts.setdefault(r[0], []).append(
                {
                    "attempt": int(r[1]),
                    "at": iso(int(r[2])),
                    "http_status": r[3],
                    "error": r[4],
                    "duration_ms": round(float(r[5]), 3),
                    "ok": bool(r[6]),
                }
            )
    return {
        "data": [
            {
                "id": e[0],
                "status": e[1],
                "value": e[2],
                "threshold": e[3],
                "started_at": iso(int(e[4])),
                "at": iso(int(e[5])),
                "notified": e[6] is not None,
                "deliveries": attempts.get(e[0], []),
            }
            for e in events
        ]
    }


def marks(db: Database, deployment: str, start_us: int, end_us: int, limit: int = 500) -> list[dict[str, Any]]:
    """Firing and resolved changes in [start, end) of the rules on ``deployment`` or global, oldest
    first. The scope is read from the event's own body, so a deleted rule's changes still show."""
    rows = db.fetchall(
        "SELECT name, status, value, threshold, at_us, body FROM alert_events "
        "WHERE at_us >= :s AND at_us < :e AND status IN ('firing', 'resolved') AND body IS NOT NULL "
        "ORDER BY at_us, id",
        {"s": start_us, "e": end_us},
    )
    out: list[dict[str, Any]] = []
    for name, status, value, threshold, at_us, raw in rows:
        body = orjson.loads(raw)
        if body.get("scope") == "global" or (
            body.get("scope") == "deployment" and body.get("deployment") == deployment
        ):
            out.append(
                {
                    "rule": name,
                    "status": status,
                    "kind": body.get("kind"),
                    "scope": body.get("scope"),
                    "value": value,
                    "threshold": threshold,
                    "unit": body.get("unit"),
                    "at": iso(int(at_us)),
                }
            )
    return out[-limit:]
