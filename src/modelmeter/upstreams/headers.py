"""The headers of every call to an upstream (the relay's and the reachability probe's)."""

from __future__ import annotations

from collections.abc import Mapping

from modelmeter.config import Deployment


def upstream_headers(
    dep: Deployment, hop: str | None = None, api: str = "chat", passed: Mapping[str, str] | None = None
) -> Mapping[str, str]:
    """``passed``: the client's own API headers (anthropic-version, anthropic-beta) sent on."""
    headers = {"content-type": "application/json", "accept": "application/json", **(passed or {})}
    if hop:
        headers["x-modelmeter-hop"] = hop  # loop detection (gateway/guards.py)
    key = dep.api_key()
    if key and api == "messages":
        headers["x-api-key"] = key  # Anthropic's own authentication
    elif key:
        headers["authorization"] = f"Bearer {key}"
    return headers
