"""The schema of a deployment definition: types and ranges, checked the same way wherever one comes from
(the config file, ``POST /api/deployments``, ``modelmeter deploy add``).

A definition that passes can always be used, listed, re-added and deleted: no NaN or negative
timeouts, no retry counts that would retry for hours, no names that shadow the API's own routes
(``/api/deployments/{name}/usage`` …). To add a setting, add a field here (with a ``description``:
it is the error message's "must be …") and the same name on ``config.Deployment``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modelmeter.metering.pricing import PriceOverride
from modelmeter.routing.spec import UpstreamSpec, check_fallback_on, check_key_env, check_price, check_upstreams
from modelmeter.upstreams.scrub import redact_url

NAME_MAX = 128
_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{{0,{NAME_MAX - 1}}}$")
# Path segments the API puts after a deployment's name (/api/deployments/{name}/usage, …/requests,
# …/events): a name with one of them after a '/' would be shadowed by that route.
_ROUTE_WORDS = {"usage", "requests", "events"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_DURATION_UNITS = {None: 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
DAY = 86400.0
# Fields that public() adds; a definition copied from GET /api/deployments may carry them.
_SHOWN_ONLY = {"source", "local", "reachable", "last_24h", "price_source"}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as "30s", "10m", "2h" (or "45": seconds)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if isinstance(value, int) and abs(value) > 10**18:  # float() would overflow on 10**400
            raise ValueError(f"a duration must be positive and finite, not {value!r:.40}")
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (use seconds, or e.g. '30s', '10m', '2h')")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"a duration must be positive, not {value!r}")
    return seconds


def check_name(name: Any) -> str:
    """A deployment name that is safe in URLs and cannot shadow a route; ValueError says why not."""
    rule = (
        f"1-{NAME_MAX} characters: letters, digits, ._:/@+- (no '..', and no '/usage', '/requests' or '/events' part)"
    )
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(rule)
    parts = name.split("/")
    if ".." in name or "" in parts or any(p in _ROUTE_WORDS for p in parts[1:]):
        raise ValueError(rule)
    return name


class DeploymentSpec(BaseModel):
    """One deployment as given. ``None`` values count as absent (as they are when stored)."""

    model_config = ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(
        description=f"1-{NAME_MAX} characters: letters, digits, ._:/@+- (no '..', and "
        "no '/usage', '/requests' or '/events' part)"
    )
    api_base: str | None = Field(
        None, max_length=2048, pattern=r"^https?://[^\s/]+[^\s]*$", description="an http(s) URL"
    )
    model: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="a string (the model id sent upstream)",
    )
    provider: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="a short label: letters, digits, ._-",
    )
    api_key_env: str | None = Field(None, max_length=128, description="a variable name")
    price: PriceOverride | None = Field(None, description="a table of USD per million tokens")
    threads: int | None = Field(None, ge=1, le=256, description="a whole number from 1 to 256")
    timeout: float = Field(
        600.0, gt=0, le=DAY, allow_inf_nan=False, description=f"a number of seconds, more than 0 and at most {DAY:.0f}"
    )
    connect_timeout: float = Field(
        10.0, gt=0, le=3600, allow_inf_nan=False, description="a number of seconds, more than 0 and at most 3600"
    )
    store_bodies: bool = Field(True, description="true or false")
    max_retries: int = Field(2, ge=0, le=10, description="a whole number from 0 to 10")
    chunk_timeout: float = Field(
        60.0, gt=0, le=DAY, allow_inf_nan=False, description=f"a number of seconds, more than 0 and at most {DAY:.0f}"
    )
    cache_ttl: float | None = Field(
        None,
        gt=0,
        le=30 * DAY,
        allow_inf_nan=False,
        description="a duration up to 30 days, e.g. 600, '30s', '10m', '2h'",
    )
    kind: Literal["chat", "embedding"] | None = Field(None, description="one of 'chat', 'embedding'")
    api: Literal["chat", "responses", "messages"] | None = Field(
        None, description="one of 'chat', 'responses', 'messages' (the API the upstream speaks)"
    )
    # Bounds on what the upstream sends back (upstreams/limits.py); None: the server's.
    max_response_bytes: int | None = Field(None, gt=0, description="a positive whole number of bytes")
    max_stream_bytes: int | None = Field(None, gt=0, description="a positive whole number of bytes")
    max_stream_seconds: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="a duration, e.g. 3600, '30m', '2h'"
    )
    max_event_bytes: int | None = Field(None, gt=0, description="a positive whole number of bytes")
    # Several upstreams behind one name (routing/): how they are chosen, when the next one is tried,
    # and when a failing one is taken out for a while.
    upstreams: list[UpstreamSpec] | None = Field(None, description="a list of upstream tables")
    routing: Literal["weighted", "least_busy"] | None = Field(None, description="one of 'weighted', 'least_busy'")
    fallback_on: tuple[str, ...] | None = Field(None, description="a list of statuses and connect/timeout/protocol/5xx")
    attempts_timeout: float | None = Field(
        None, gt=0, le=DAY, allow_inf_nan=False, description="a duration for all attempts together, e.g. '90s'"
    )
    cooldown_after: int | None = Field(None, ge=1, le=1000, description="a whole number of failures from 1 to 1000")
    cooldown_window: float | None = Field(None, gt=0, le=DAY, allow_inf_nan=False, description="a duration, e.g. '60s'")
    cooldown: float | None = Field(None, gt=0, le=DAY, allow_inf_nan=False, description="a duration, e.g. '30s'")

    @field_validator("name", mode="plain")
    @classmethod
    def _name(cls, value: Any) -> str:
        return check_name(value)

    @field_validator("api_key_env")
    @classmethod
    def _key_env(cls, value: str | None) -> str | None:
        return check_key_env(value)

    @field_validator("price", mode="plain")
    @classmethod
    def _price(cls, value: Any) -> PriceOverride | None:
        return check_price(value)

    @field_validator("cache_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> Any:
        return None if value in (None, "", 0) else parse_duration(value)

    @field_validator("upstreams", mode="plain")
    @classmethod
    def _upstreams(cls, value: Any) -> list[UpstreamSpec] | None:
        return check_upstreams(value)

    @field_validator("fallback_on", mode="plain")
    @classmethod
    def _fallback_on(cls, value: Any) -> tuple[str, ...] | None:
        return check_fallback_on(value)

    @field_validator("attempts_timeout", "cooldown_window", "cooldown", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("max_stream_seconds", mode="before")
    @classmethod
    def _stream_seconds(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @classmethod
    def parse(cls, data: Any) -> DeploymentSpec:
        """Validate a definition; ValueError with one clear sentence per problem."""
        if not isinstance(data, dict):
            raise ValueError("a deployment must be a table/object of fields")
        given = {k: v for k, v in data.items() if v is not None and k not in _SHOWN_ONLY}
        if given.get("api_base") == "embedded":  # as public() shows an embedded model's
            del given["api_base"]
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            raise ValueError(_describe(exc, given.get("name"))) from None

    def fields(self) -> dict[str, Any]:
        """The validated values by field name (as objects: ``price`` stays a PriceOverride)."""
        return dict(self)


def _describe(exc: ValidationError, name: Any) -> str:
    """'deployment 'x': 'timeout' must be …' for each problem, in field order."""
    prefix = f"deployment {name!r}: " if isinstance(name, str) and _NAME.match(name) else ""
    problems = []
    for err in exc.errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else "definition"
        info = DeploymentSpec.model_fields.get(field)
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown deployment field {field!r}")
        elif field == "price":
            problems.append(f"bad 'price': {err.get('ctx', {}).get('error', err['msg'])}")
        elif field in ("cache_ttl", "upstreams", "fallback_on") and err["type"] == "value_error":
            problems.append(f"'{field}': {err.get('ctx', {}).get('error', err['msg'])}")
        elif info is not None and info.description:
            got = err.get("input")
            if field == "api_base" and isinstance(got, str):
                got = redact_url(got)  # a password in the URL is a secret
            # never echo an api_key_env value: a key pasted there by mistake would reach the log
            hide = got is None or field in ("name", "api_key_env")
            shown = "" if hide else f" (got {got!r:.40})"
            problems.append(f"'{field}' must be {info.description}{shown}")
        else:
            problems.append(f"'{field}': {err['msg']}")
    return prefix + "; ".join(problems)
