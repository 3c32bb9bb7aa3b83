"""Settings and deployments from TOML: defaults, validation messages, the key never shown."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from tests.helpers import write_config

from modelmeter.config import (
    LOCAL_CHAT_MODEL,
    LOCAL_EMBEDDING_MODEL,
    ConfigError,
    Deployment,
    Settings,
    load_settings,
)


@pytest.fixture(autouse=True)
def no_env_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELMETER_DATABASE", raising=False)
    monkeypatch.delenv("MODELMETER_ADMIN_KEY", raising=False)


def test_defaults_serve_the_embedded_models() -> None:
    s = load_settings(None)
    assert s == Settings()
    assert (s.host, s.port, s.database) == ("127.0.0.1", 8000, "sqlite:///modelmeter.db")
    assert s.max_body_bytes == 10 * 1024 * 1024
    assert [d.name for d in s.deployments] == [LOCAL_CHAT_MODEL, LOCAL_EMBEDDING_MODEL]
    assert all(d.is_local and d.provider == "local" and d.api_base is None for d in s.deployments)
    assert [d.local_kind for d in s.deployments] == ["chat", "embedding"]


def test_full_config(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "c.toml",
        database="sqlite:///x.db",
        port=9123,
        max_body_bytes=1000,
        local_threads=1,
        queue_size=50,
        batch_size=10,
        store_bodies=False,
        deployments=[
            {
                "name": "gpt",
                "model": "gpt-4o-mini",
                "api_base": "https://api.example.com/v1/",
                "api_key_env": "OPENAI_API_KEY",
                "timeout": 30,
                "connect_timeout": 2.5,
            },
            {
                "name": "house",
                "api_base": "http://10.0.0.5:8080/v1",
                "provider": "vllm",
                "price": {"input": 0.5, "cached_input": "0.1", "output": 1},
                "store_bodies": False,
            },
            {"name": "smollm2-135m-instruct", "provider": "local", "threads": 1},
        ],
    )
    s = load_settings(cfg)
    assert (s.port, s.database, s.max_body_bytes, s.local_threads) == (9123, "sqlite:///x.db", 1000, 1)
    assert (s.queue_size, s.batch_size, s.store_bodies) == (50, 10, False)
    gpt, house, local = s.deployments
    assert gpt.api_base == "https://api.example.com/v1"  # trailing slash dropped
    assert (gpt.model, gpt.provider, gpt.timeout, gpt.connect_timeout) == ("gpt-4o-mini", "openai", 30.0, 2.5)
    assert (house.model, house.provider, house.store_bodies) == ("house", "vllm", False)  # model defaults to name
    assert house.price is not None
    assert (house.price.input, house.price.cached_input, house.price.output) == (
        Decimal("0.5"),
        Decimal("0.1"),
        Decimal("1"),
    )
    assert local.is_local and local.threads == 1 and local.model == "smollm2-135m-instruct"
    assert all(d.source == "config" for d in s.deployments)


def test_env_database_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELMETER_DATABASE", "postgresql://u@h/db")
    assert load_settings(write_config(tmp_path / "c.toml", database="sqlite:///x.db")).database == "postgresql://u@h/db"
    assert load_settings(None).database == "postgresql://u@h/db"


def test_overrides_ignore_none() -> None:
    s = Settings().with_overrides(port=1234, host=None, database=None)
    assert s.port == 1234 and s.host == "127.0.0.1" and s.database == Settings().database


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nport = ", "not valid TOML"),
        ("[server]\nbogus = 1\n", "unknown [server] setting(s): bogus"),
        ("server = 5\n", "[server] must be a table"),
        ("deployments = 5\n", "must be an array of tables"),
        (
            '[[deployments]]\nname = "a"\napi_base = "http://x"\n[[deployments]]\nname = "a"\napi_base = "http://y"\n',
            "used twice: a",
        ),
    ],
)
def test_bad_files(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"api_base": "http://x"}, "'name' must be"),
        ({"name": "", "api_base": "http://x"}, "'name' must be"),
        ({"name": "has space", "api_base": "http://x"}, "'name' must be"),
        ({"name": "a" * 129, "api_base": "http://x"}, "'name' must be"),
        ({"name": "a", "api_base": "ftp://x"}, "must be an http"),
        ({"name": "a", "api_base": 5}, "must be an http"),
        ({"name": "a"}, "the embedded models are"),  # no api_base, no provider: an embedded model
        ({"name": "a", "provider": "openai"}, "'api_base' is required"),
        ({"name": "a", "provider": "local"}, "the embedded models are"),
        ({"name": "a", "api_base": "http://x", "model": 3}, "'model' must be a string"),
        ({"name": "a", "api_base": "http://x", "price": {"input": -1}}, "bad 'price'"),
        ({"name": "a", "api_base": "http://x", "price": {"inputs": 1}}, "bad 'price'"),
        ({"name": "a", "api_base": "http://x", "api_key_env": "sk-live-123"}, "must be a variable name"),
        ({"name": "a", "api_base": "http://x", "timeout": "soon"}, "deployment 'a'"),
        ({"name": "a", "api_base": "http://x", "api_key": "sk-123"}, "unknown deployment field"),
    ],
)
def test_bad_deployments(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Deployment.from_mapping(data)


def test_names_may_look_like_model_paths() -> None:
    dep = Deployment.from_mapping({"name": "meta-llama/Llama-3.1-8B:fp8@v1+x", "api_base": "http://x"})
    assert dep.model == dep.name


def test_the_key_is_read_from_the_environment_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_CFG_KEY", "sk-very-secret")
    dep = Deployment.from_mapping(
        {"name": "a", "api_base": "http://x", "api_key_env": "MM_CFG_KEY", "price": {"input": 1, "output": 2}}
    )
    assert dep.api_key() == "sk-very-secret"
    public = dep.public()
    assert public["api_key_env"] == "MM_CFG_KEY" and "sk-very-secret" not in repr(public)
    assert public["price"] == {"input": 1.0, "output": 2.0}
    assert public["local"] is False and public["source"] == "config"
    monkeypatch.delenv("MM_CFG_KEY")
    assert dep.api_key() is None
    assert Deployment.from_mapping({"name": "b", "api_base": "http://x"}).api_key() is None
