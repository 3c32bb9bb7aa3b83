"""Pieces of the /v1 front door: embedded models' kinds (in-process, over ASGI), the rejected-call
budget, Host names, hop ids and metadata caps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from tests.helpers import Harness, running_app, sqlite_url

from modelmeter.config import (
    LOCAL_CHAT_MODEL,
    LOCAL_EMBEDDING_MODEL,
    ConfigError,
    Settings,
    default_deployments,
    load_settings,
)
from modelmeter.gateway.errors import APIError
from modelmeter.gateway.guards import HopGuard, host_name, is_loopback
from modelmeter.gateway.metadata import MAX_METADATA_KEYS, MAX_VALUE_CHARS, header_text, request_metadata
from modelmeter.gateway.rejects import RejectBudget

MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Harness]:
    # The built-in embedded deployments, never started: a right-kind call would say "still starting".
    async with running_app(sqlite_url(tmp_path / "k.db"), default_deployments()) as h:
        yield h


async def test_embedded_models_know_their_kind(embedded: Harness) -> None:
    res = await embedded.chat({"model": LOCAL_EMBEDDING_MODEL, "messages": MSGS})
    err = res.json()["error"]
    assert res.status == 400 and err["code"] == "wrong_model_kind", res.body
    assert err["message"] == f"'{LOCAL_EMBEDDING_MODEL}' is an embeddings model; use /v1/embeddings."
    res = await embedded.request("POST", "/v1/completions", {"model": LOCAL_EMBEDDING_MODEL, "prompt": "x"})
    assert res.status == 400 and res.json()["error"]["code"] == "wrong_model_kind"
    res = await embedded.request("POST", "/v1/embeddings", {"model": LOCAL_CHAT_MODEL, "input": "x"})
    err = res.json()["error"]
    assert res.status == 400 and err["message"] == f"'{LOCAL_CHAT_MODEL}' is a chat model; use /v1/chat/completions."
    res = await embedded.request("POST", "/v1/embeddings", {"model": LOCAL_EMBEDDING_MODEL, "input": "x"})
    assert res.status == 503 and res.json()["error"]["code"] == "model_loading"  # the right kind goes on
    rows = await embedded.written()
    assert [r["http_status"] for r in rows] == [400, 400, 400, 503]  # all recorded
    assert not embedded.upstream.calls


def test_reject_budget_refills_per_address() -> None:
    budget = RejectBudget(per_minute=3)
    assert [budget.take("a", now=0.0) for _ in range(3)] == [None, None, None]
    wait = budget.take("a", now=0.0)
    assert wait is not None and 19.9 < wait <= 20.0  # one token every 20 s
    assert budget.take("b", now=0.0) is None  # another address has its own budget
    assert budget.take("a", now=20.0) is None and budget.take("a", now=20.0) is not None
    assert RejectBudget(0).take("a") is None  # 0: no limit


@pytest.mark.parametrize(
    ("header", "name", "loopback"),
    [
        (b"localhost:8000", "localhost", True),
        (b"127.0.0.1", "127.0.0.1", True),
        (b"[::1]:80", "::1", True),
        (b"127.0.0.2:9", "127.0.0.2", True),
        (b"LOCALHOST", "localhost", True),
        (b"evil.example:8000", "evil.example", False),
        (b"127.0.0.1.nip.io", "127.0.0.1.nip.io", False),
        (b"[2001:db8::1]:8000", "2001:db8::1", False),
        (b"localhost.evil.example", "localhost.evil.example", False),
    ],
)
def test_host_names(header: bytes, name: str, loopback: bool) -> None:
    assert host_name(header) == name
    assert is_loopback(name) is loopback


def test_hops() -> None:
    a, b = HopGuard("a"), HopGuard("b")
    assert a.next_hop(None) == "a"
    assert b.next_hop(b"a") == "a,b"
    with pytest.raises(APIError) as exc:
        a.next_hop(b"a,b")
    assert exc.value.status == 508 and exc.value.code == "loop_detected"
    with pytest.raises(APIError):
        a.next_hop(b",".join(b"x%d" % i for i in range(8)))


def test_metadata_is_capped() -> None:
    body = {"metadata": {**{f"k{i}": "v" * 1000 for i in range(40)}, "tags": ["t1"]}, "user": "u" * 600}
    meta, tags = request_metadata(body, None)
    assert meta is not None and tags == ["t1"]
    assert len([k for k in meta if k.startswith("k")]) == MAX_METADATA_KEYS
    assert all(len(v) == MAX_VALUE_CHARS for k, v in meta.items() if k.startswith("k") or k == "user")
    assert meta["metadata_truncated"] is True
    small = {"metadata": {"a": {"b": [1, 2]}, "n": 3}, "user": "me"}
    assert request_metadata(small, b"x, y") == (
        {"a": {"b": [1, 2]}, "n": 3, "user": "me", "tags": ["x", "y"]},
        ["x", "y"],
    )
    big_value = {"metadata": {"a": list(range(1000))}}
    meta, _ = request_metadata(big_value, None)
    assert meta is not None and meta["a"] == orjson.dumps(list(range(1000))).decode()[:MAX_VALUE_CHARS]


def test_tag_header_text() -> None:
    assert header_text("équipe".encode()) == "équipe"
    assert header_text("café".encode("latin-1")) == "café"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[server]\ncors_origins = "https://a.example"', "cors_origins must be a list"),
        ('[server]\ncors_origins = ["https://a.example/path"]', "cors_origins must be a list"),
        ("[server]\nrejected_per_minute = -1", "rejected_per_minute"),
        ('[[deployments]]\nname = "x"\napi_base = "http://x"\nkind = "image"', "'kind' must be one of"),
    ],
)
def test_front_door_settings_are_checked(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_front_door_settings(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[server]\ncors_origins = ["https://a.example", "http://localhost:3000"]\n'
        'rejected_per_minute = 0\n\n[[deployments]]\nname = "e"\napi_base = "http://x"\n'
        'kind = "embedding"\n'
    )
    settings = load_settings(path)
    assert settings.cors_origins == ("https://a.example", "http://localhost:3000")
    assert settings.rejected_per_minute == 0 and settings.deployments[0].kind == "embedding"
    assert Settings().cors_origins == () and Settings().rejected_per_minute == 600
