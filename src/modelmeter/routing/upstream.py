"""One upstream of a routed deployment: where it is, and how it is chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from modelmeter.upstreams.scrub import redact_url

if TYPE_CHECKING:
    from modelmeter.config import Deployment


@dataclass(frozen=True, slots=True)
class Upstream:
    """``dep``: the deployment as this upstream serves it (its api_base, model, api, key and price,
    the deployment's name): the relay and the pricer take it as they take a one-upstream deployment."""

    label: str  # served_by in the records; never a secret (no user:password of the URL)
    dep: Deployment
    weight: float = 1.0
    priority: int = 0  # 0 is tried first; a higher number only when all lower ones failed or are out
    max_concurrency: int | None = None  # calls in flight above which it is skipped (saturated)
    ref: str | None = None  # another deployment's name: ``dep`` is then that one's, found per call

    def public(self) -> dict[str, Any]:
        if self.ref is not None:
            return {
                "name": self.label,
                "deployment": self.ref,
                "weight": self.weight,
                "priority": self.priority,
                "max_concurrency": self.max_concurrency,
            }
        return self._own_public()

    def _own_public(self) -> dict[str, Any]:
        dep = self.dep
        price = dep.public()["price"]
        return {
            "name": self.label,
            "api_base": redact_url(dep.api_base) if dep.api_base else None,
            "model": dep.model,
            "provider": dep.provider,
            "api": dep.api,
            "api_key_env": dep.api_key_env,
            "price": price,
            "weight": self.weight,
            "priority": self.priority,
            "max_concurrency": self.max_concurrency,
        }


def default_label(api_base: str, model: str, taken: set[str]) -> str:
    """host:port of the URL (no user:password), then the model, then a number, until unique."""
    host = urlsplit(api_base).netloc.rpartition("@")[2] or "upstream"
    for label in (host, f"{host}/{model}"):
        if label not in taken:
            return label
    n = 2
    while f"{host}#{n}" in taken:
        n += 1
    return f"{host}#{n}"
