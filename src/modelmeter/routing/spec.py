"""The schema of a deployment's upstreams and routing settings (issue 15).

A deployment with ``[[deployments.upstreams]]`` routes each call to one of them; every field an
upstream leaves out is the deployment's own (so two vLLM replicas list only their ``api_base``).
Checked here, the same way wherever a definition comes from (config file, API, CLI).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelmeter.metering.pricing import PriceOverride

MAX_UPSTREAMS = 32
# What makes a call try the next upstream: connect errors, timeouts, protocol errors before any
# byte, 429 and 5xx (a status, or "5xx" for all of them).
DEFAULT_FALLBACK_ON = ("connect", "timeout", "protocol", "429", "5xx")
_FALLBACK_WORDS = {"connect", "timeout", "protocol", "4xx", "5xx"}


class UpstreamSpec(BaseModel):
    """One upstream of a deployment as given; ``None``: the deployment's own value."""

    model_config = ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True)

    name: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$", description="a short label"
    )
    api_base: str | None = Field(
        None, max_length=2048, pattern=r"^https?://[^\s/]+[^\s]*$", description="an http(s) URL"
    )
    model: str | None = Field(None, min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")
    provider: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    api: str | None = Field(None, pattern=r"^(chat|responses|messages)$", description="chat, responses or messages")
    api_key_env: str | None = Field(None, max_length=128, description="a variable name")
    price: PriceOverride | None = None
    weight: float = Field(1.0, gt=0, le=1_000_000, allow_inf_nan=False, description="a positive number")
    priority: int = Field(0, ge=0, le=100, description="a whole number from 0 (tried first) to 100")
    max_concurrency: int | None = Field(None, ge=1, le=1_000_000, description="a positive whole number")
    # Another deployment of this gateway as this upstream (its URL, model, API, key and price), e.g.
    # a hosted model that is also served on its own: instead of api_base and the fields above.
    deployment: str | None = Field(None, min_length=1, max_length=128, description="a deployment's name")

    @field_validator("api_key_env")
    @classmethod
    def _key_env(cls, value: str | None) -> str | None:
        return check_key_env(value)

    @field_validator("weight", mode="before")
    @classmethod
    def _weight(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("price", mode="plain")
    @classmethod
    def _price(cls, value: Any) -> PriceOverride | None:
        return check_price(value)


def check_key_env(value: str | None) -> str | None:
    """``api_key_env`` (a deployment's or an upstream's): the name of an environment variable."""
    if value is not None and not value.isidentifier():
        raise ValueError("not a variable name")
    return value


def check_price(value: Any) -> PriceOverride | None:
    """``price`` (a deployment's or an upstream's): a table of per-million-token rates."""
    if value is None or isinstance(value, PriceOverride):
        return value
    if not isinstance(value, dict):
        raise ValueError("not a table")
    return PriceOverride.from_mapping(value)


def check_fallback_on(value: Any) -> tuple[str, ...] | None:
    """``fallback_on``: statuses (400-599) and the words connect, timeout, protocol, 4xx, 5xx."""
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise ValueError('a list such as ["connect", "timeout", 429, "5xx"]')
    out: list[str] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and 400 <= item <= 599:
            out.append(str(item))
        elif isinstance(item, str) and (item in _FALLBACK_WORDS or (item.isdigit() and 400 <= int(item) <= 599)):
            out.append(item)
        else:
            raise ValueError(
                f"{item!r} is not a status from 400 to 599 nor one of {', '.join(sorted(_FALLBACK_WORDS))}"
            )
    return tuple(out)


def check_upstreams(value: Any) -> list[UpstreamSpec] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ValueError("a non-empty list of upstream tables ([[deployments.upstreams]])")
    if len(value) > MAX_UPSTREAMS:
        raise ValueError(f"at most {MAX_UPSTREAMS} upstreams")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, UpstreamSpec):
            out.append(item)
            continue
        if not isinstance(item, dict):
            raise ValueError(f"upstream {i + 1} is not a table")
        try:
            spec = UpstreamSpec.model_validate({k: v for k, v in item.items() if v is not None})
        except Exception as exc:  # pydantic's ValidationError: say which upstream and which field
            raise ValueError(f"upstream {i + 1}: {_first_problem(exc)}") from None
        own = [f for f in _REF_EXCLUDES if getattr(spec, f) is not None]
        if spec.deployment is not None and own:
            raise ValueError(f"upstream {i + 1}: 'deployment' brings its own {', '.join(own)}: give one or the other")
        out.append(spec)
    return out


_REF_EXCLUDES = ("api_base", "model", "provider", "api", "api_key_env", "price")


def _first_problem(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors is None:
        return str(exc)
    problems = []
    for err in errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else "definition"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown upstream field {field!r}")
            continue
        info = UpstreamSpec.model_fields.get(field)
        what = info.description if info is not None and info.description else None
        hide = field == "api_key_env"  # never echo what may be a pasted key
        got = "" if hide else f" (got {err.get('input')!r:.40})"
        problems.append(f"'{field}' must be {what}{got}" if what else f"'{field}': {err['msg']}")
    return "; ".join(problems)
