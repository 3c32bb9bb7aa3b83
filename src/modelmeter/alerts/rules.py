"""An alert rule: what is measured, over which scope and window, and where it is sent.

Rules come from the config (``[[alerts]]`` tables) or the API (stored in ``alert_rules``); both are
parsed here. A webhook URL is a secret (it often carries a token): ``public()`` shows its host only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from modelmeter.deployment_schema import parse_duration

# kind -> (unit, how the value compares with the threshold)
KINDS: dict[str, tuple[str, str]] = {
    "spend": ("usd", "above"),  # spend in the window, USD
    "key_budget": ("percent", "at_least"),  # a virtual key's spend as a share of its budget
    "error_rate": ("percent", "above"),  # failed calls / calls in the window
    "latency_p95": ("ms", "above"),
    "ttft_p95": ("ms", "above"),
    "no_traffic": ("requests", "at_most"),  # calls in the window: 0 is a dead client
    # upstreams of routed deployments cooling down or out, now (routing/; alerts/upstreams.py)
    "upstream_cooling": ("upstreams", "above"),
}
SCOPES = ("deployment", "key", "global")
FORMATS = ("json", "slack")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_FIELDS = {
    "name",
    "kind",
    "scope",
    "deployment",
    "key",
    "threshold",
    "window",
    "for",
    "webhook",
    "webhook_env",
    "format",
}


class RuleError(ValueError):
    """A rule that cannot be used; the message says why."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class AlertRule:
    name: str
    kind: str
    scope: str  # "deployment", "key" or "global"
    target: str | None  # the deployment's name or the key's alias; None for global
    threshold: float
    window_s: float
    for_s: float
    webhook: str | None = field(default=None, repr=False)  # the URL itself: never shown
    webhook_env: str | None = None  # or the variable holding it (read at delivery)
    format: str = "json"
    source: str = "config"  # "config" or "api"

    @property
    def unit(self) -> str:
        return KINDS[self.kind][0]

    def breached(self, value: float | None) -> bool:
        if value is None:  # no calls to measure (a p95 or error rate of nothing): not a breach
            return False
        how = KINDS[self.kind][1]
        if how == "above":
            return value > self.threshold
        if how == "at_least":
            return value >= self.threshold
        return value <= self.threshold

    def webhook_url(self) -> str | None:
        return self.webhook or (os.environ.get(self.webhook_env) if self.webhook_env else None) or None

    def webhook_shown(self) -> str | None:
        """The host of the webhook, or "set" if it has none; never the URL (it holds tokens)."""
        url = self.webhook_url()
        if not url:
            return None
        try:
            return urlsplit(url).hostname or "set"
        except ValueError:  # a bad URL in webhook_env (read at delivery, not checked with the rule)
            return "not a valid URL"

    def definition(self) -> dict[str, Any]:
        """What is stored for an API rule (the URL included: the database keeps it, answers do not)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "scope": self.scope,
            "threshold": self.threshold,
            "window": self.window_s,
            "for": self.for_s,
            "format": self.format,
        }
        if self.target is not None:
            out["deployment" if self.scope == "deployment" else "key"] = self.target
        if self.webhook:
            out["webhook"] = self.webhook
        if self.webhook_env:
            out["webhook_env"] = self.webhook_env
        return out

    def public(self) -> dict[str, Any]:
        out = {k: v for k, v in self.definition().items() if k != "webhook"}
        out.update(unit=self.unit, source=self.source, webhook=self.webhook_shown())
        out["deployment"] = self.target if self.scope == "deployment" else None
        out["key"] = self.target if self.scope == "key" else None
        return out


def _http_url(value: Any) -> bool:
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        return parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 address)
        return False


def parse_rule(data: Any, source: str = "config") -> AlertRule:
    """A rule from a config table or an API body; RuleError names the field at fault."""
    if not isinstance(data, dict):
        raise RuleError("an alert rule must be a table / JSON object")
    unknown = set(data) - _FIELDS
    if unknown:
        raise RuleError(f"unknown alert field(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RuleError(
            "'name' must be 1-64 characters: letters, digits, ._:- (starting with a letter or digit)", "name"
        )
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise RuleError(f"alert {name!r}: 'kind' must be one of {', '.join(KINDS)}", "kind")
    scope = data.get("scope") or (
        "key" if kind == "key_budget" else ("deployment" if data.get("deployment") else "global")
    )
    if not isinstance(scope, str) or scope not in SCOPES:
        raise RuleError(f"alert {name!r}: 'scope' must be one of {', '.join(SCOPES)}", "scope")
    if (kind == "key_budget") != (scope == "key"):
        raise RuleError(f"alert {name!r}: kind 'key_budget' goes with scope 'key' (and only it)", "scope")
    target = data.get("deployment") if scope == "deployment" else data.get("key") if scope == "key" else None
    if scope != "global" and (not isinstance(target, str) or not target):
        field = "deployment" if scope == "deployment" else "key"
        raise RuleError(f"alert {name!r}: scope {scope!r} needs '{field}' (its name)", field)
    threshold = data.get("threshold", 0 if kind in ("no_traffic", "upstream_cooling") else None)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold < 1e12:
        raise RuleError(f"alert {name!r}: 'threshold' must be a number, 0 or more", "threshold")
    if kind == "key_budget" and not 0 < threshold <= 100:
        raise RuleError(f"alert {name!r}: a key_budget threshold is a percentage, e.g. 80", "threshold")
    try:
        window_s = parse_duration(data.get("window", "5m"))
    except ValueError as exc:
        raise RuleError(f"alert {name!r}: window: {exc}", "window") from None
    try:
        for_s = parse_duration(data["for"]) if data.get("for") not in (None, 0, "0", "0s") else 0.0
    except ValueError as exc:
        raise RuleError(f"alert {name!r}: for: {exc}", "for") from None
    if window_s > 31 * 86400:
        raise RuleError(f"alert {name!r}: 'window' is at most 31 days", "window")
    webhook, webhook_env = data.get("webhook"), data.get("webhook_env")
    if webhook is not None and not _http_url(webhook):
        raise RuleError(f"alert {name!r}: 'webhook' must be an http(s) URL", "webhook")
    if webhook_env is not None and (not isinstance(webhook_env, str) or not re.fullmatch(r"[A-Za-z_]\w*", webhook_env)):
        raise RuleError(f"alert {name!r}: 'webhook_env' must be an environment variable's name", "webhook_env")
    if webhook and webhook_env:
        raise RuleError(f"alert {name!r}: give 'webhook' or 'webhook_env', not both", "webhook")
    fmt = data.get("format", "json")
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise RuleError(f'alert {name!r}: \'format\' must be "json" or "slack"', "format")
    return AlertRule(
        name=name,
        kind=kind,
        scope=scope,
        target=target,
        threshold=float(threshold),
        window_s=window_s,
        for_s=for_s,
        webhook=webhook,
        webhook_env=webhook_env,
        format=fmt,
        source=source,
    )
