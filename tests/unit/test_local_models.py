"""The embedded default models, served by worker processes on loopback (real models)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from openai import OpenAI

from modelmeter.upstreams import local
from modelmeter.upstreams.local import (
    DEFAULT_CHAT_DEPLOYMENT,
    DEFAULT_EMBEDDING_DEPLOYMENT,
    LocalModelSpec,
    LocalModelWorker,
    smollm2_gguf_path,
)

pytestmark = [pytest.mark.model, pytest.mark.timeout(120)]


def _port_open(api_base: str) -> bool:
    parts = urlsplit(api_base)
    assert parts.hostname == "127.0.0.1" and parts.port
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def workers() -> Iterator[dict[str, LocalModelWorker]]:
    started = {
        "chat": LocalModelWorker(LocalModelSpec("chat", threads=1)),
        "embedding": LocalModelWorker(LocalModelSpec("embedding", threads=1)),
    }
    try:
        for w in started.values():
            w.start(timeout=60)
        yield started
    finally:
        bases = [w.api_base for w in started.values()]
        for w in started.values():
            w.stop()
    # stopping them closed their ports
    assert all(base is not None and not _port_open(base) for base in bases)


def _client(worker: LocalModelWorker) -> OpenAI:
    assert worker.api_base is not None
    return OpenAI(base_url=worker.api_base, api_key="unused", max_retries=0, timeout=60)


def test_constants_and_gguf() -> None:
    assert DEFAULT_CHAT_DEPLOYMENT == "smollm2-135m-instruct"
    assert DEFAULT_EMBEDDING_DEPLOYMENT == "multilingual-e5-small"
    path = smollm2_gguf_path(fetch=False)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_api_base_and_model_ids(workers: dict[str, LocalModelWorker]) -> None:
    for w in workers.values():
        assert w.api_base is not None
        assert w.api_base.startswith("http://127.0.0.1:") and w.api_base.endswith("/v1")
        assert w.is_running()
    assert workers["chat"].model_id == "smollm2-135m-instruct"
    assert workers["embedding"].model_id == "multilingual-e5-small-q4"
    ids = [m.id for m in _client(workers["chat"]).models.list().data]
    assert ids == ["smollm2-135m-instruct"]


def test_chat_non_streamed(workers: dict[str, LocalModelWorker]) -> None:
    chat = workers["chat"]
    resp = _client(chat).chat.completions.create(
        model=chat.model_id,
        messages=[{"role": "user", "content": "Say hello in one short sentence."}],
        max_tokens=32,
    )
    assert resp.choices[0].message.content
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_chat_streamed_with_usage(workers: dict[str, LocalModelWorker]) -> None:
    chat = workers["chat"]
    stream = _client(chat).chat.completions.create(
        model=chat.model_id,
        messages=[{"role": "user", "content": "Name three colours."}],
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = [], None
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(text).strip()
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_concurrent_requests(workers: dict[str, LocalModelWorker]) -> None:
    chat = workers["chat"]
    client = _client(chat)

    def ask(i: int) -> int:
        resp = client.chat.completions.create(
            model=chat.model_id,
            messages=[{"role": "user", "content": f"Count from {i} to {i + 3}."}],
            max_tokens=16,
        )
        assert resp.usage is not None
        return resp.usage.completion_tokens

    with ThreadPoolExecutor(3) as pool:
        assert all(n > 0 for n in pool.map(ask, range(3)))


def test_embeddings(workers: dict[str, LocalModelWorker]) -> None:
    emb = workers["embedding"]
    resp = _client(emb).embeddings.create(model=emb.model_id, input=["The quick brown fox.", "Une phrase en français."])
    assert len(resp.data) == 2
    assert all(len(d.embedding) == 384 for d in resp.data)
    assert resp.usage.prompt_tokens > 0 and resp.usage.total_tokens > 0


def test_stop_closes_ports() -> None:
    w = LocalModelWorker(LocalModelSpec("embedding", threads=1))
    api_base = w.start(timeout=60)
    assert _port_open(api_base)
    w.stop()
    w.stop()  # idempotent
    assert w.api_base is None and not w.is_running()
    assert not _port_open(api_base)


def test_start_failure_reports_worker_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"not a gguf file" * 100)
    monkeypatch.setattr(local, "smollm2_gguf_path", lambda fetch=True: bogus)
    log = tmp_path / "worker.log"
    w = LocalModelWorker(LocalModelSpec("chat", threads=1), log_path=log)
    with pytest.raises(RuntimeError, match="exited with code") as info:
        w.start(timeout=30)
    assert "failed to load model" in str(info.value)  # the tail of the worker's log
    assert str(log) in str(info.value) and "failed to load model" in log.read_text()
    assert not w.is_running() and w.api_base is None
