"""Alert rules under /api/alerts: list (with each rule's state), create, delete, and a rule's history
(state changes and every webhook delivery attempt). Webhook URLs are never in an answer: the host only.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from modelmeter.alerts import store
from modelmeter.alerts.engine import AlertEngine
from modelmeter.alerts.rules import RuleError, parse_rule
from modelmeter.api.errors import api_error
from modelmeter.units import iso
from modelmeter.usage.window import WindowError, parse_window

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


def _engine(request: Request) -> AlertEngine:
    engine: AlertEngine | None = request.app.state.mm.alerts
    if engine is None:
        raise api_error(503, "alerts are starting; try again shortly", None, "alerts_unavailable")
    return engine


@router.get("", summary="List alert rules with their state (webhook shown as its host only)")
def list_alerts(request: Request) -> dict[str, Any]:
    engine = _engine(request)
    states = store.states(engine.db)
    data = []
    rules = engine.rules()
    for rule in rules:
        item = rule.public()
        st = states.get(rule.name)
        item.update(
            state=st[0].state if st else "ok",
            value=st[0].value if st else None,
            since=iso(st[0].since_us) if st else None,
            last_fired=iso(st[0].last_fired_us) if st and st[0].last_fired_us else None,
            checked=iso(st[1]) if st else None,
        )
        data.append(item)
    gone = store.deleted(engine.db, {r.name for r in rules})
    return {"data": data, "deleted": gone, "interval_seconds": engine.interval}


@router.get("/marks", summary="Firing and resolved changes of a deployment's (and global) rules in a window")
def alert_marks(
    request: Request,
    deployment: Annotated[str, Query(min_length=1, max_length=256)],
    window: Annotated[str | None, Query(description="1h, 24h, 7d or 30d; or give start and end")] = None,
    start: Annotated[str | None, Query(description="ISO-8601 start (inclusive)")] = None,
    end: Annotated[str | None, Query(description="ISO-8601 end (exclusive)")] = None,
    tz: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """For the markers on the Usage tab's charts: rule, status, value and when (oldest first)."""
    engine = _engine(request)
    try:
        win = parse_window(window, start, end, tz)
    except WindowError as exc:
        raise api_error(400, str(exc), exc.param) from None
    marks = store.marks(engine.db, deployment, win.start_us, win.end_us)
    names = {r.name for r in engine.rules()}
    for m in marks:
        m["deleted"] = m["rule"] not in names
    return {"data": marks}


@router.post("", status_code=201, summary="Add an alert rule (stored in the database)")
async def create_alert(request: Request, definition: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    engine = _engine(request)
    try:
        rule = parse_rule(definition, source="api")
    except RuleError as exc:
        raise api_error(400, str(exc), exc.param, "invalid_value") from None
    if engine.config_rule(rule.name) is not None:
        raise api_error(409, f"alert {rule.name!r} is defined in the config", "name", "alert_conflict")
    if not await asyncio.to_thread(store.add_rule, engine.db, rule, int(time.time() * 1e6)):
        raise api_error(409, f"alert {rule.name!r} already exists", "name", "alert_conflict")
    return rule.public()


@router.delete("/{name}", status_code=204, summary="Remove an alert rule made through the API (its history is kept)")
def delete_alert(request: Request, name: str) -> Response:
    engine = _engine(request)
    if engine.config_rule(name) is not None:
        raise api_error(409, f"alert {name!r} is defined in the config; remove it there", "name", "alert_in_config")
    if not store.delete_rule(engine.db, name):
        raise api_error(404, f"no alert named {name!r}", "name", "alert_not_found")
    return Response(status_code=204)


@router.get("/{name}/history", summary="A rule's state changes, newest first, with their delivery attempts")
def alert_history(request: Request, name: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    engine = _engine(request)
    if not any(r.name == name for r in engine.rules()) and not store.history(engine.db, name, 1)["data"]:
        raise api_error(404, f"no alert named {name!r}", "name", "alert_not_found")
    return store.history(engine.db, name, limit)
