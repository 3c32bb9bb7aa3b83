"""Settings and deployments, from a TOML file, CLI flags and the environment."""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, get_args, get_type_hints

from pydantic import TypeAdapter, ValidationError

from modelmeter.alerts.rules import AlertRule, RuleError, parse_rule
from modelmeter.deployment_schema import DeploymentSpec, parse_duration
from modelmeter.metering.pricing import PriceOverride
from modelmeter.otel.settings import OtelSettings, parse_otel, with_env
from modelmeter.routing.spec import DEFAULT_FALLBACK_ON, UpstreamSpec
from modelmeter.routing.upstream import Upstream, default_label
from modelmeter.storage.retention import Retention
from modelmeter.upstreams.limits import ResponseLimits
from modelmeter.upstreams.scrub import redact_url

LOCAL_CHAT_MODEL = "smollm2-135m-instruct"
LOCAL_EMBEDDING_MODEL = "multilingual-e5-small"
LOCAL_MODELS = {LOCAL_CHAT_MODEL: "chat", LOCAL_EMBEDDING_MODEL: "embedding"}
_LIMIT_BYTES = ("max_response_bytes", "max_stream_bytes", "max_event_bytes")  # see upstreams/limits.py
_LIMITS = ResponseLimits()  # the defaults of the server's upstream limits


class ConfigError(ValueError):
    """A configuration or deployment definition that cannot be used; the message says why."""


@dataclass(frozen=True)
class Deployment:
    name: str  # what clients send as "model"
    model: str  # model id sent upstream
    provider: str = "openai"
    api_base: str | None = None  # None: the embedded model of that name
    api_key_env: str | None = None  # the key is read from this variable, never stored
    price: PriceOverride | None = None
    threads: int | None = None  # embedded models only
    timeout: float = 600.0  # whole upstream call, seconds
    connect_timeout: float = 10.0
    store_bodies: bool = True
    source: str = "config"  # "config", "api" (run-time, stored in the database) or "builtin" (no config)
    max_retries: int = 2  # retries of connect errors, 429 and 5xx before any byte is relayed
    chunk_timeout: float = 60.0  # longest wait for a stream's next chunk, seconds
    cache_ttl: float | None = None  # response cache of non-streamed answers, seconds (None: off)
    kind: str | None = None  # "chat" or "embedding" where known (embedded models know their own)
    api: str | None = None  # the upstream's API: "chat" | "responses" | "messages" (apis/routing.py)
    # Bounds on what the upstream sends back (upstreams/limits.py); None: the server's.
    max_response_bytes: int | None = None
    max_stream_bytes: int | None = None
    max_stream_seconds: float | None = None
    max_event_bytes: int | None = None
    # Several upstreams (routing/): empty for a one-upstream deployment, whose own fields are its
    # upstream (the hot path then never looks at routing at all).
    upstreams: tuple[Upstream, ...] = ()
    routing: str = "weighted"  # "weighted" random, or "least_busy" (fewest calls in flight)
    fallback_on: tuple[str, ...] = DEFAULT_FALLBACK_ON
    attempts_timeout: float | None = None  # all attempts together, seconds (None: ``timeout``)
    cooldown_after: int = 3  # failures within cooldown_window that take an upstream out ...
    cooldown_window: float = 60.0
    cooldown: float = 30.0  # ... for this many seconds; then one probe call decides

    @property
    def is_local(self) -> bool:
        return self.api_base is None

    @property
    def local_kind(self) -> str:
        return LOCAL_MODELS.get(self.model, "chat")

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def public(self) -> dict[str, Any]:
        """What the API shows: never the key itself, only the variable's name."""
        return {
            "name": self.name,
            "model": self.model,
            "provider": self.provider,
            # an embedded worker's loopback URL changes on every start and skips metering: never shown;
            # a password in the URL is a secret
            "api_base": redact_url(self.api_base) if self.api_base is not None else "embedded",
            "api_key_env": self.api_key_env,
            "price": _price_dict(self.price),
            # where prices come from: the deployment's own, the genai-prices catalog, or none (embedded)
            "price_source": "deployment" if self.price else ("none" if self.is_local else "catalog"),
            "store_bodies": self.store_bodies,
            "local": self.is_local,
            "source": self.source,
            "kind": self.kind,
            "api": self.api,
            **(self._routing_public() if self.upstreams else {}),
        }

    def _routing_public(self) -> dict[str, Any]:
        return {
            "upstreams": [u.public() for u in self.upstreams],
            "routing": self.routing,
            "fallback_on": list(self.fallback_on),
            "attempts_timeout": self.attempts_timeout,
            "cooldown_after": self.cooldown_after,
            "cooldown_window": self.cooldown_window,
            "cooldown": self.cooldown,
        }

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "config") -> Deployment:
        try:
            spec = DeploymentSpec.parse(data).fields()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        name = spec["name"]
        ups: list[UpstreamSpec] | None = spec.pop("upstreams")
        spec = {k: v for k, v in spec.items() if v is not None or k not in _ROUTING_DEFAULTS}
        api_base = spec["api_base"]
        provider = spec["provider"]
        if ups:
            first = min(ups, key=lambda u: u.priority)
            api_base = api_base or first.api_base or next((u.api_base for u in ups if u.api_base), None)
            if api_base is None:
                raise ConfigError(
                    f"deployment {name!r}: at least one upstream needs an 'api_base' (its own or the "
                    "deployment's); upstreams that name another 'deployment' come on top"
                )
            if not all(u.api_base or u.deployment or spec["api_base"] for u in ups):
                raise ConfigError(
                    f"deployment {name!r}: every upstream needs an 'api_base' (its own or the deployment's)"
                )
        elif any(spec.get(k) is not None for k in _ROUTING_ONLY):
            given = ", ".join(k for k in _ROUTING_ONLY if spec.get(k) is not None)
            raise ConfigError(f"deployment {name!r}: {given} only apply with [[deployments.upstreams]]")
        if api_base is not None:
            api_base = api_base.rstrip("/")
        elif provider not in (None, "local"):
            raise ConfigError(f"deployment {name!r}: 'api_base' is required unless provider is 'local'")
        model = spec["model"] or name
        if api_base is None and model not in LOCAL_MODELS:
            raise ConfigError(
                f"deployment {name!r}: the embedded models are "
                f"{', '.join(LOCAL_MODELS)}; set 'model' to one or give 'api_base'"
            )
        spec.update(api_base=api_base, model=model, provider=provider or ("local" if api_base is None else "openai"))
        dep = cls(**spec, source=source)
        return dep if not ups else replace(dep, upstreams=_upstreams(dep, ups))


_ROUTING_DEFAULTS = {"routing", "fallback_on", "cooldown_after", "cooldown_window", "cooldown"}
_ROUTING_ONLY = ("routing", "fallback_on", "attempts_timeout", "cooldown_after", "cooldown_window", "cooldown")


def _upstreams(dep: Deployment, specs: list[UpstreamSpec]) -> tuple[Upstream, ...]:
    """Each upstream as a Deployment of its own (the deployment's fields where it gives none)."""
    out: list[Upstream] = []
    taken: set[str] = set()
    for u in specs:
        if u.deployment is not None:
            if u.deployment == dep.name:
                raise ConfigError(f"deployment {dep.name!r}: an upstream cannot be the deployment itself")
            label = u.name or f"deployment:{u.deployment}"
            if label in taken:
                raise ConfigError(f"deployment {dep.name!r}: upstream name {label!r} used twice")
            taken.add(label)
            out.append(Upstream(label, dep, u.weight, u.priority, u.max_concurrency, ref=u.deployment))
            continue
        api_base = (u.api_base or dep.api_base or "").rstrip("/")
        model = u.model or dep.model
        label = u.name or default_label(api_base, model, taken)
        if label in taken:
            raise ConfigError(f"deployment {dep.name!r}: upstream name {label!r} used twice")
        taken.add(label)
        own = replace(
            dep,
            api_base=api_base,
            model=model,
            provider=u.provider or dep.provider,
            api=u.api or dep.api,
            api_key_env=u.api_key_env or dep.api_key_env,
            price=u.price or dep.price,
        )
        out.append(Upstream(label, own, u.weight, u.priority, u.max_concurrency))
    return tuple(sorted(out, key=lambda x: x.priority))


def _limits(data: dict[str, Any]) -> dict[str, Any]:
    """The upstream limits set in ``data`` (bytes: positive integers; seconds: a duration)."""
    out: dict[str, Any] = {}
    for key in _LIMIT_BYTES:
        value = data.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"'{key}' must be a positive whole number of bytes, not {value!r}")
            out[key] = value
    if data.get("max_stream_seconds") is not None:
        out["max_stream_seconds"] = parse_duration(data["max_stream_seconds"])
    return out


def _price_dict(price: PriceOverride | None) -> dict[str, float] | None:
    if price is None:
        return None
    return {k: float(v) for k, v in asdict(price).items() if v is not None}


def default_deployments() -> list[Deployment]:
    return [Deployment(name=m, model=m, provider="local", source="builtin") for m in LOCAL_MODELS]


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    database: str = "sqlite:///modelmeter.db"
    deployments: tuple[Deployment, ...] = field(default_factory=lambda: tuple(default_deployments()))
    max_body_bytes: int = 10 * 1024 * 1024
    queue_size: int = 20_000  # records waiting for the writer before the gateway slows down
    batch_size: int = 2000  # at most; a batch is what arrived within 20 ms (see Recorder)
    local_threads: int = 2
    store_bodies: bool = True
    retention: Retention = field(default_factory=Retention)
    auth: bool = True  # admin key on the dashboard, /api and /metrics (--no-auth: loopback only)
    admin_key: str | None = field(default=None, repr=False)  # else MODELMETER_ADMIN_KEY, else generated
    require_keys: bool = False  # /v1 callers must present a virtual key
    prune_interval_s: float = 300.0
    max_stored_body_bytes: int = 1024 * 1024  # larger request/response bodies are stored truncated
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call /v1 (none: CORS off)
    rejected_per_minute: int = 600  # calls the gateway rejects itself, per client IP, before 429s
    # Bounds on what upstreams send back (upstreams/limits.py; a deployment may override each).
    max_response_bytes: int = _LIMITS.max_response_bytes  # 64 MiB
    max_stream_bytes: int = _LIMITS.max_stream_bytes  # 256 MiB
    max_stream_seconds: float = _LIMITS.max_stream_seconds  # 1 h
    max_event_bytes: int = _LIMITS.max_event_bytes  # 8 MiB
    header_timeout: float = 10.0  # seconds to send a request's headers (a slow client is cut off)
    body_timeout: float = 30.0  # longest pause while a request's body arrives, seconds
    max_connections_per_client: int = 256  # open connections per client address (0: no cap)
    alerts: tuple[AlertRule, ...] = ()  # [[alerts]] rules (more can be added through /api/alerts)
    alert_interval: float = 30.0  # seconds between evaluations of the alert rules
    public_url: str | None = None  # the dashboard's address in alert links (default http://host:port)
    otel: OtelSettings = field(default_factory=OtelSettings)  # OpenTelemetry export ([otel]; off by default)
    redis: str | None = None  # redis://host:port: upstream cooldowns shared between processes (routing/shared.py)
    # "process": records are priced and stored by a process of its own (recording/remote.py), what
    # ``serve`` uses unless told otherwise; "thread": by threads of the gateway's process.
    recorder: str | None = None

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_settings(path: str | Path | None = None) -> Settings:
    """Settings from a TOML file (or the defaults), then ``MODELMETER_DATABASE`` from the env."""
    settings = Settings()
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
        settings = _from_toml(data)
    env_db = os.environ.get("MODELMETER_DATABASE")
    env_key = os.environ.get("MODELMETER_ADMIN_KEY")
    settings = settings.with_overrides(database=env_db or None, admin_key=env_key or None)
    try:
        return replace(settings, otel=with_env(settings.otel))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _from_toml(data: dict[str, Any]) -> Settings:
    server = data.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError("[server] must be a table")
    known = {
        "host",
        "port",
        "database",
        "max_body_bytes",
        "queue_size",
        "batch_size",
        "local_threads",
        "store_bodies",
        "admin_key",
        "require_keys",
        "max_stored_body_bytes",
        "cors_origins",
        "rejected_per_minute",
        *_LIMIT_BYTES,
        "max_stream_seconds",
        "header_timeout",
        "body_timeout",
        "max_connections_per_client",
        "alert_interval",
        "public_url",
        "redis",
        "recorder",
    }
    unknown = set(server) - known
    if unknown:
        raise ConfigError(f"unknown [server] setting(s): {', '.join(sorted(unknown))}")
    _check_server(server)
    if "redis" in server and not re.fullmatch(r"(rediss?|unix)://\S+", server["redis"]):
        raise ConfigError('[server] redis must be a URL such as "redis://127.0.0.1:6379"')
    if server.get("recorder", "process") not in ("process", "thread"):
        raise ConfigError('[server] recorder must be "process" or "thread"')
    retention = data.get("retention", {})
    if not isinstance(retention, dict) or set(retention) - {"bodies_days", "records_days", "rollups_days"}:
        raise ConfigError("[retention] takes bodies_days, records_days and rollups_days (numbers of days)")
    for key, value in retention.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"retention.{key} must be a positive number of days")
    raw = data.get("deployments")
    deployments = default_deployments()
    if raw is not None:
        if not isinstance(raw, list):
            raise ConfigError("[[deployments]] must be an array of tables")
        deployments = [Deployment.from_mapping(d) for d in raw]
        names = [d.name for d in deployments]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ConfigError(f"deployment name(s) used twice: {', '.join(sorted(dupes))}")
    alerts = _alerts(data.get("alerts", []))
    if "alert_interval" in server and not server["alert_interval"] > 0:
        raise ConfigError("[server] alert_interval must be a positive number of seconds")
    if "cors_origins" in server:
        server = {**server, "cors_origins": _origins(server["cors_origins"])}
    try:
        server = {**server, **_limits(server)}
    except ValueError as exc:
        raise ConfigError(f"[server] {exc}") from exc
    try:
        otel = parse_otel(data.get("otel", {}))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return Settings(
        deployments=tuple(deployments), retention=Retention(**retention), alerts=alerts, otel=otel, **server
    )


def _alerts(raw: Any) -> tuple[AlertRule, ...]:
    if not isinstance(raw, list):
        raise ConfigError("[[alerts]] must be an array of tables")
    try:
        rules = tuple(parse_rule(r) for r in raw)
    except RuleError as exc:
        raise ConfigError(f"[[alerts]] {exc}") from None
    names = [r.name for r in rules]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"alert name(s) used twice: {', '.join(sorted(dupes))}")
    return rules


def _origins(value: Any) -> tuple[str, ...]:
    """``cors_origins``: exact origins such as "https://app.example" (scheme, host, optional port)."""
    if not isinstance(value, list) or not all(
        isinstance(o, str) and re.fullmatch(r"https?://[^\s/]+", o) for o in value
    ):
        raise ConfigError(
            'cors_origins must be a list of origins such as "https://app.example" (scheme and host, no path)'
        )
    return tuple(value)


_PARSED_APART = {"cors_origins", "max_stream_seconds"}  # checked by _origins and _limits
_KINDS = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}


def _check_server(server: dict[str, Any]) -> None:
    """Each [server] value of the type its Settings field declares, numbers finite and not negative,
    ports 0-65535: a bad value is refused here, before anything starts (``port = "abc"``)."""
    hints = get_type_hints(Settings)
    for key, value in server.items():
        if key in _PARSED_APART:
            continue
        try:
            TypeAdapter(hints[key]).validate_python(value, strict=True)
        except ValidationError:
            kinds = [_KINDS[t] for t in (get_args(hints[key]) or (hints[key],)) if t in _KINDS]
            raise ConfigError(f"[server] {key} must be {' or '.join(kinds) or hints[key]}, not {value!r}") from None
        if key == "port" and not 0 <= value <= 65535:
            raise ConfigError(f"[server] port must be from 0 (any free port) to 65535, not {value}")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and (not math.isfinite(value) or value < 0):
            raise ConfigError(f"[server] {key} must be a finite number, 0 or more, not {value!r}")
