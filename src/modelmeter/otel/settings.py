"""The ``[otel]`` table of the config: where to send spans and metrics (nothing is sent without it)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

ENDPOINT_ENV = "MODELMETER_OTEL_ENDPOINT"  # overrides the file's endpoint ("" in the file: off)
_KNOWN = {"endpoint", "headers", "service_name", "capture_content", "export_interval_s"}


@dataclass(frozen=True)
class OtelSettings:
    endpoint: str | None = None  # the collector's OTLP/HTTP base, e.g. http://localhost:4318 (None: off)
    # sent with every export; often an API key: kept out of repr (and so out of any log of the settings)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    service_name: str = "modelmeter"
    capture_content: bool = False  # prompts and answers on the spans: opt-in, they may be sensitive
    export_interval_s: float = 10.0  # how often metrics are sent

    @property
    def enabled(self) -> bool:
        return bool(self.endpoint)

    def public(self) -> dict[str, Any]:
        """What may be shown: header values are secrets (API keys), only their names are."""
        return {
            "endpoint": self.endpoint,
            "headers": sorted(self.headers),
            "service_name": self.service_name,
            "capture_content": self.capture_content,
        }


def parse_otel(data: Any) -> OtelSettings:
    """``[otel]`` from the TOML file; ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("[otel] must be a table")
    unknown = set(data) - _KNOWN
    if unknown:
        raise ValueError(f"unknown [otel] setting(s): {', '.join(sorted(unknown))}")
    endpoint = data.get("endpoint")
    if endpoint is not None and not isinstance(endpoint, str):
        raise ValueError(f"[otel] endpoint must be a string, not {endpoint!r}")
    headers = data.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", k)
        for k, v in headers.items()
    ):
        raise ValueError('[otel] headers must be a table of header names to strings, e.g. {"x-api-key" = "…"}')
    name = data.get("service_name", "modelmeter")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("[otel] service_name must be a non-empty string")
    capture = data.get("capture_content", False)
    if not isinstance(capture, bool):
        raise ValueError(f"[otel] capture_content must be true or false, not {capture!r}")
    interval = data.get("export_interval_s", 10.0)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval <= 3600:
        raise ValueError(f"[otel] export_interval_s must be a number of seconds from 0 to 3600, not {interval!r}")
    return OtelSettings(check_endpoint(endpoint) if endpoint else None, dict(headers), name, capture, float(interval))


def check_endpoint(endpoint: str) -> str:
    """An http(s) URL without a trailing slash: the exporters add /v1/traces and /v1/metrics."""
    endpoint = endpoint.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", endpoint):
        raise ValueError(f'[otel] endpoint must be an http(s) URL such as "http://localhost:4318", not {endpoint!r}')
    return endpoint


def with_env(settings: OtelSettings) -> OtelSettings:
    """``MODELMETER_OTEL_ENDPOINT`` wins over the file (set to "" it turns export off)."""
    value = os.environ.get(ENDPOINT_ENV)
    if value is None:
        return settings
    return replace(settings, endpoint=check_endpoint(value) if value.strip() else None)
