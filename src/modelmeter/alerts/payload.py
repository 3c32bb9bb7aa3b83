"""The bodies a webhook receives: the documented JSON, or Slack's ``{"text": ...}``.

JSON body (``format = "json"``)::

    {"status": "firing" | "resolved", "rule": "gpt-errors", "kind": "error_rate",
     "scope": "deployment", "deployment": "gpt", "key": null,
     "value": 62.5, "threshold": 50.0, "unit": "percent",
     "window_seconds": 300.0, "for_seconds": 30.0,
     "started_at": "2026-12-06T02:10:00.000000Z", "at": "2026-12-06T02:10:30.000000Z",
     "resolved_at": null, "link": "http://127.0.0.1:8000/models/gpt?start=…&end=…&status=error"}
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from modelmeter.alerts.measure import Measurement
from modelmeter.alerts.rules import AlertRule
from modelmeter.alerts.state import Transition
from modelmeter.units import iso


def link(base_url: str, rule: AlertRule, m: Measurement) -> str:
    """The Usage tab over the measured window (the model's page; the model list for other scopes)."""
    base = base_url.rstrip("/")
    if rule.scope != "deployment" or rule.target is None:
        return f"{base}/"
    query = {"start": iso(m.start_us), "end": iso(m.end_us)}
    if rule.kind == "error_rate":
        query["status"] = "error"
    return f"{base}/models/{quote(rule.target, safe='')}?{urlencode(query)}"


def body(rule: AlertRule, tr: Transition, m: Measurement, base_url: str) -> dict[str, Any]:
    return {
        "status": tr.change,
        "rule": rule.name,
        "kind": rule.kind,
        "scope": rule.scope,
        "deployment": rule.target if rule.scope == "deployment" else None,
        "key": rule.target if rule.scope == "key" else None,
        "value": m.value,
        "threshold": rule.threshold,
        "unit": rule.unit,
        "window_seconds": rule.window_s,
        "for_seconds": rule.for_s,
        "started_at": iso(tr.started_us),
        "at": iso(tr.at_us),
        "resolved_at": iso(tr.at_us) if tr.change == "resolved" else None,
        "link": link(base_url, rule, m),
    }


def _figure(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "usd":
        return f"${value:,.4f}"
    if unit == "percent":
        return f"{value:g}%"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{value:g} {unit}"


def slack(b: dict[str, Any]) -> dict[str, Any]:
    """Slack's incoming-webhook shape (also read by Mattermost, Discord's /slack and others)."""
    mark = ":red_circle: FIRING" if b["status"] == "firing" else ":large_green_circle: RESOLVED"
    where = b["deployment"] or b["key"] or "all deployments"
    text = (
        f"{mark} {b['rule']} ({b['kind']} on {where}): {_figure(b['value'], b['unit'])}, "
        f"threshold {_figure(b['threshold'], b['unit'])}, window {b['window_seconds']:g} s, "
        f"since {b['started_at']} <{b['link']}|usage>"
    )
    return {"text": text}


def render(rule: AlertRule, b: dict[str, Any]) -> dict[str, Any]:
    return slack(b) if rule.format == "slack" else b
