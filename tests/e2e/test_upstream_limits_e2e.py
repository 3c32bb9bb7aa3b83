"""Upstream limits end to end (issue 18 #1, #7, #12): the real server against the fake upstream's
large and hostile answers.

Large non-streamed bodies pass through (up to ``max_response_bytes``, a clear 502 past it); a gzip
bomb, an SSE stream that never ends an event, an endless stream and a flood are cut by their limits
with the memory they may use bounded and the call recorded; an upstream that echoes its key, and an
``api_base`` with a password, leak neither to the client, nor to the record, nor to the log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, closed_port_url, sqlite_url, write_config

MSGS = [{"role": "user", "content": "Say hello."}]
UPSTREAM_KEY = "sk-upstream-e2e-0123456789abcdefSECRET"
URL_PASSWORD = "pw-in-the-url-7f3a9c"
KEY_ENV = "MM_E2E_UPSTREAM_KEY"
MiB = 1024 * 1024


def _deployments(base: str) -> list[dict[str, Any]]:
    creds_base = closed_port_url().replace("http://", f"https://user:{URL_PASSWORD}@")
    return [
        {"name": "embed", "model": "fake-model", "api_base": base, "timeout": 15},
        {
            "name": "embed-capped",
            "model": "fake-model",
            "api_base": base,
            "timeout": 15,
            "max_response_bytes": 1_000_000,
        },
        {"name": "echo", "model": "x-echo-key", "api_base": base, "api_key_env": KEY_ENV, "max_retries": 0},
        {"name": "creds", "model": "m", "api_base": creds_base, "max_retries": 0},
        {"name": "endless", "model": "x-endless-stream", "api_base": base, "timeout": 30, "max_stream_seconds": 1.5},
        {"name": "flood", "model": "x-endless-stream", "api_base": base, "timeout": 30, "max_stream_bytes": 20_000},
    ]


@pytest.fixture(scope="module")
def server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("limits")
    config = write_config(
        tmp / "modelmeter.toml", database=sqlite_url(tmp / "mm.db"), deployments=_deployments(fake_upstream.base_url)
    )
    with ServerProcess(config, log_dir=tmp / "server", env={KEY_ENV: UPSTREAM_KEY}) as srv:
        yield srv


def client_of(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=60)


def peak_rss(server: ServerProcess) -> int:
    """The server process's peak resident memory so far (VmHWM), bytes."""
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def only_record(server: ServerProcess, deployment: str) -> dict[str, Any]:
    rows = server.wait_for_records(deployment, 1)
    return server.record(rows[0]["id"])


BATCH = [f"passage number {i} of a large embedding batch" for i in range(400)]


def test_a_large_non_streamed_answer_passes_through(server: ServerProcess) -> None:
    """#1: 400 float embeddings, ~3 MB of JSON from a plain-http upstream: before, the lean client
    stopped reading above 1 MiB and the call ended in a 504 at the deployment's timeout."""
    t0 = time.monotonic()
    raw = client_of(server).embeddings.with_raw_response.create(model="embed", input=BATCH, encoding_format="float")
    elapsed = time.monotonic() - t0
    out = raw.parse()
    assert len(raw.http_response.content) > 2 * MiB
    assert len(out.data) == 400 and len(out.data[399].embedding) == 384
    assert elapsed < 5.0, elapsed
    rec = only_record(server, "embed")
    assert rec["status"] == "success" and rec["http_status"] == 200


def test_past_max_response_bytes_a_clear_502_recorded(server: ServerProcess) -> None:
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        client_of(server).embeddings.create(model="embed-capped", input=BATCH, encoding_format="float")
    assert time.monotonic() - t0 < 5.0
    assert info.value.status_code == 502
    err = info.value.body
    assert isinstance(err, dict) and err["code"] == "upstream_response_too_large", err
    assert "1000000" in err["message"] and err["type"] == "upstream_error"
    rec = only_record(server, "embed-capped")
    assert rec["status"] == "error" and rec["http_status"] == 502
    assert "1000000" in rec["error"]


def test_an_endless_stream_ends_at_max_stream_seconds_with_its_tokens(server: ServerProcess) -> None:
    """#7: valid chunks forever; cut at the limit, recorded with the tokens so far."""
    pieces: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(openai.APIError) as info:
        for chunk in client_of(server).chat.completions.create(model="endless", messages=MSGS, stream=True):  # type: ignore[arg-type]
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed < 10.0, elapsed
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "upstream_stream_too_long"
    assert len(pieces) > 5
    rec = only_record(server, "endless")
    assert rec["status"] == "error" and rec["http_status"] == 502
    assert rec["completion_tokens"] > 0 and rec["usage_estimated"]


def test_a_flooding_stream_ends_at_max_stream_bytes(server: ServerProcess) -> None:
    t0 = time.monotonic()
    with pytest.raises(openai.APIError) as info:
        for _ in client_of(server).chat.completions.create(model="flood", messages=MSGS, stream=True):  # type: ignore[arg-type]
            pass
    assert time.monotonic() - t0 < 10.0
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "upstream_stream_too_large"
    assert "20000 bytes" in info.value.body["message"]
    rec = only_record(server, "flood")
    assert rec["status"] == "error" and rec["completion_tokens"] > 0


def _text_everywhere(server: ServerProcess, deployment: str, answer: str) -> str:
    """What a secret must be absent from: the answer, the stored record, the API's deployment
    list and the server's log."""
    rec = only_record(server, deployment)
    listing = server.api("GET", "/api/deployments")[1]
    return "\n".join([answer, orjson.dumps(rec).decode(), orjson.dumps(listing).decode(), server.stdout, server.stderr])


def test_an_upstream_echoing_its_key_leaks_it_nowhere(server: ServerProcess) -> None:
    """#12: the fake answers 401 quoting the Authorization header it got."""
    with pytest.raises(openai.AuthenticationError) as info:
        client_of(server).chat.completions.create(model="echo", messages=MSGS)  # type: ignore[arg-type]
    answer = info.value.response.text
    assert "Incorrect API key provided" in answer  # the upstream's message still gets through ...
    everything = _text_everywhere(server, "echo", answer)
    assert UPSTREAM_KEY not in everything  # ... without the key
    assert "[redacted]" in answer


def test_a_password_in_api_base_shows_nowhere(server: ServerProcess) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client_of(server).chat.completions.create(model="creds", messages=MSGS)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    answer = info.value.response.text
    assert "cannot reach the upstream" in answer
    assert URL_PASSWORD not in _text_everywhere(server, "creds", answer)


# -- memory: each on a fresh server, so its peak memory is this call's --------------------------


def _fresh(start_server: Any, make_config: Any, fake_upstream: FakeUpstream, model: str) -> ServerProcess:
    dep = {"name": "hostile", "model": model, "api_base": fake_upstream.base_url, "timeout": 30, "max_retries": 0}
    return start_server(make_config(deployments=[dep]))  # type: ignore[no-any-return]


def test_a_gzip_bomb_is_cut_at_max_response_bytes(
    start_server: Any, make_config: Any, fake_upstream: FakeUpstream
) -> None:
    """#7: ~250 KB of gzip inflating to 256 MiB; the default max_response_bytes is 64 MiB."""
    server = _fresh(start_server, make_config, fake_upstream, "x-gzip-bomb")
    before = peak_rss(server)
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        client_of(server).chat.completions.create(model="hostile", messages=MSGS)  # type: ignore[arg-type]
    assert time.monotonic() - t0 < 15.0
    assert info.value.status_code == 502
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "upstream_response_too_large"
    grew = peak_rss(server) - before
    assert grew < 100 * MiB, f"peak memory grew {grew / MiB:.0f} MiB"
    rec = only_record(server, "hostile")
    assert rec["status"] == "error" and rec["http_status"] == 502


def test_an_event_without_end_is_cut_at_max_event_bytes(
    start_server: Any, make_config: Any, fake_upstream: FakeUpstream
) -> None:
    """#7: ``data: xxxx…`` forever without a blank line (it reached 6 GB in 20 s)."""
    server = _fresh(start_server, make_config, fake_upstream, "x-sse-no-blank")
    before = peak_rss(server)
    t0 = time.monotonic()
    with pytest.raises(openai.APIError) as info:
        for _ in client_of(server).chat.completions.create(model="hostile", messages=MSGS, stream=True):  # type: ignore[arg-type]
            pass
    assert time.monotonic() - t0 < 15.0
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "upstream_event_too_large"
    grew = peak_rss(server) - before
    assert grew < 64 * MiB, f"peak memory grew {grew / MiB:.0f} MiB"
    rec = only_record(server, "hostile")
    assert rec["status"] == "error" and rec["http_status"] == 502
