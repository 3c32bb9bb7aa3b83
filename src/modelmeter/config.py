"""Settings and deployments, from a TOML file, CLI flags and the environment."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from modelmeter.metering.pricing import PriceOverride
from modelmeter.storage.retention import Retention
from modelmeter.upstreams.limits import ResponseLimits
from modelmeter.upstreams.scrub import redact_url

LOCAL_CHAT_MODEL = "smollm2-135m-instruct"
LOCAL_EMBEDDING_MODEL = "multilingual-e5-small"
LOCAL_MODELS = {LOCAL_CHAT_MODEL: "chat", LOCAL_EMBEDDING_MODEL: "embedding"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")
_DEPLOYMENT_KEYS = {"name", "api_base", "model", "provider", "api_key_env", "price", "threads",
                    "timeout", "connect_timeout", "store_bodies", "max_retries", "chunk_timeout",
                    "cache_ttl", "kind", "max_response_bytes", "max_stream_bytes", "max_stream_seconds",
                    "max_event_bytes"}
KINDS = ("chat", "embedding")  # a deployment's kind: chat (also /v1/completions) or embeddings
_LIMIT_BYTES = ("max_response_bytes", "max_stream_bytes", "max_event_bytes")  # see upstreams/limits.py
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_DURATION_UNITS = {None: 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
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
    source: str = "config"  # "config" or "api" (run-time, stored in the database)
    max_retries: int = 2  # retries of connect errors, 429 and 5xx before any byte is relayed
    chunk_timeout: float = 60.0  # longest wait for a stream's next chunk, seconds
    cache_ttl: float | None = None  # response cache of non-streamed answers, seconds (None: off)
    kind: str | None = None  # "chat" or "embedding" where known (embedded models know their own)
    # Bounds on what the upstream sends back (upstreams/limits.py); None: the server's.
    max_response_bytes: int | None = None
    max_stream_bytes: int | None = None
    max_stream_seconds: float | None = None
    max_event_bytes: int | None = None

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
            "store_bodies": self.store_bodies,
            "local": self.is_local,
            "source": self.source,
            "kind": self.kind,
        }

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "config") -> Deployment:
        unknown = set(data) - _DEPLOYMENT_KEYS - {"source", "local"}
        if unknown:
            raise ConfigError(f"unknown deployment field(s): {', '.join(sorted(unknown))}")
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError("deployment 'name' must be 1-128 characters: letters, digits, ._:/@+-")
        api_base = data.get("api_base")
        provider = data.get("provider")
        if api_base is not None:
            if not isinstance(api_base, str) or not re.match(r"^https?://[^\s/]+", api_base):
                raise ConfigError(f"deployment {name!r}: 'api_base' must be an http(s) URL")
            api_base = api_base.rstrip("/")
        elif provider not in (None, "local"):
            raise ConfigError(f"deployment {name!r}: 'api_base' is required unless provider is 'local'")
        model = data.get("model") or name
        if not isinstance(model, str):
            raise ConfigError(f"deployment {name!r}: 'model' must be a string")
        if api_base is None and model not in LOCAL_MODELS:
            raise ConfigError(f"deployment {name!r}: the embedded models are "
                              f"{', '.join(LOCAL_MODELS)}; set 'model' to one or give 'api_base'")
        price = data.get("price")
        try:
            override = PriceOverride.from_mapping(price) if price else None
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ConfigError(f"deployment {name!r}: bad 'price': {exc}") from exc
        key_env = data.get("api_key_env")
        if key_env is not None and (not isinstance(key_env, str) or not key_env.isidentifier()):
            raise ConfigError(f"deployment {name!r}: 'api_key_env' must be a variable name")
        try:
            max_retries = int(data.get("max_retries", 2))
            chunk_timeout = float(data.get("chunk_timeout", 60.0))
            cache_ttl = parse_duration(data["cache_ttl"]) if data.get("cache_ttl") else None
            limits = _limits(data)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"deployment {name!r}: {exc}") from exc
        if isinstance(data.get("max_retries"), bool) or max_retries < 0:
            raise ConfigError(f"deployment {name!r}: 'max_retries' must be 0 or more")
        if not chunk_timeout > 0:
            raise ConfigError(f"deployment {name!r}: 'chunk_timeout' must be positive (seconds)")
        kind = data.get("kind")
        if kind is not None and kind not in KINDS:
            raise ConfigError(f"deployment {name!r}: 'kind' must be one of {', '.join(KINDS)}")
        try:
            return cls(
                name=name,
                model=model,
                provider=str(provider or ("local" if api_base is None else "openai")),
                api_base=api_base,
                api_key_env=key_env,
                price=override,
                threads=int(data["threads"]) if data.get("threads") else None,
                timeout=float(data.get("timeout", 600.0)),
                connect_timeout=float(data.get("connect_timeout", 10.0)),
                store_bodies=bool(data.get("store_bodies", True)),
                source=source,
                max_retries=max_retries,
                chunk_timeout=chunk_timeout,
                cache_ttl=cache_ttl,
                kind=kind,
                **limits,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"deployment {name!r}: {exc}") from exc


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


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as "30s", "10m", "2h" (or "45": seconds)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (use seconds, or e.g. '30s', '10m', '2h')")
    if not seconds > 0:
        raise ValueError(f"a duration must be positive, not {value!r}")
    return seconds


def _price_dict(price: PriceOverride | None) -> dict[str, float] | None:
    if price is None:
        return None
    return {k: float(v) for k, v in asdict(price).items() if v is not None}


def default_deployments() -> list[Deployment]:
    return [Deployment(name=m, model=m, provider="local") for m in LOCAL_MODELS]


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    database: str = "sqlite:///modelmeter.db"
    deployments: tuple[Deployment, ...] = field(default_factory=lambda: tuple(default_deployments()))
    max_body_bytes: int = 10 * 1024 * 1024
    queue_size: int = 20_000  # records waiting for the writer before the gateway slows down
    batch_size: int = 2000  # at most; a batch is what arrived within 50 ms (see Recorder)
    local_threads: int = 2
    store_bodies: bool = True
    retention: Retention = field(default_factory=Retention)
    auth: bool = True  # admin key on the dashboard, /api and /metrics (--no-auth: loopback only)
    admin_key: str | None = None  # else MODELMETER_ADMIN_KEY, else generated on first start
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
    return settings.with_overrides(database=env_db or None, admin_key=env_key or None)


def _from_toml(data: dict[str, Any]) -> Settings:
    server = data.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError("[server] must be a table")
    known = {"host", "port", "database", "max_body_bytes", "queue_size", "batch_size",
             "local_threads", "store_bodies", "admin_key", "require_keys", "max_stored_body_bytes",
             "cors_origins", "rejected_per_minute", *_LIMIT_BYTES, "max_stream_seconds"}
    unknown = set(server) - known
    if unknown:
        raise ConfigError(f"unknown [server] setting(s): {', '.join(sorted(unknown))}")
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
    if "cors_origins" in server:
        server = {**server, "cors_origins": _origins(server["cors_origins"])}
    limit = server.get("rejected_per_minute")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigError("rejected_per_minute must be a whole number, 0 or more (0: no limit)")
    try:
        server = {**server, **_limits(server)}
    except ValueError as exc:
        raise ConfigError(f"[server] {exc}") from exc
    return Settings(deployments=tuple(deployments), retention=Retention(**retention), **server)


def _origins(value: Any) -> tuple[str, ...]:
    """``cors_origins``: exact origins such as "https://app.example" (scheme, host, optional port)."""
    if not isinstance(value, list) or not all(
            isinstance(o, str) and re.fullmatch(r"https?://[^\s/]+", o) for o in value):
        raise ConfigError('cors_origins must be a list of origins such as "https://app.example" '
                          "(scheme and host, no path)")
    return tuple(value)
