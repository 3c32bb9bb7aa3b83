"""The ledger's edge cases end to end (issue 11 items 1-5), through the official openai client
against the real server and the fake upstream: which model a call is priced as, streams that end
without [DONE], abandoned non-streamed calls, x-request-id and the upstream's headers, and the
stored body of a streamed call."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest

from modelmeter.metering.pricing import GENAI_SOURCE, Pricer
from tests.fakes.upstream import FINGERPRINT, FakeUpstream
from tests.helpers import ServerProcess, sqlite_url, write_config

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]
PROMPT = (3 + 2) + (3 + 2)  # the fake counts 3 + words per message
TEXT7 = "tok0 tok1 tok2 tok3 tok4 tok5 tok6"
RUN = uuid.uuid4().hex[:8]
NO_DONE = f"ledger-{RUN}-no-done"
SLOW_MS = 1500  # the slow fake's time to answer
# What the fake answers as, for each model it is asked for (a router substituting models).
ANSWER_AS = {"gpt-4o-mini": "gpt-4o", "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano": f"mystery-model-{RUN}"}
PRICE = {"input": 1, "output": 2}  # USD per million tokens


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    """One fake that answers with other model ids and sends OpenAI's headers; one slow one."""
    answer_as = ",".join(f"{k}={v}" for k, v in ANSWER_AS.items())
    with (
        FakeUpstream(env={"FAKE_ANSWER_AS": answer_as, "FAKE_UPSTREAM_HEADERS": "1"}) as openai_like,
        FakeUpstream(env={"FAKE_TTFT_MS": str(SLOW_MS)}) as slow,
    ):
        yield openai_like, slow


@pytest.fixture(scope="module")
def server(
    fake_upstream: FakeUpstream, fakes: tuple[FakeUpstream, FakeUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("ledger")
    like, slow = fakes[0].base_url, fakes[1].base_url
    deployments: list[dict[str, Any]] = [
        {"name": "mini", "model": "gpt-4o-mini", "provider": "openai", "api_base": like},
        {"name": "dated", "model": "gpt-4.1-mini", "provider": "openai", "api_base": like},
        {"name": "nano", "model": "gpt-4.1-nano", "provider": "openai", "api_base": like},
        {"name": "lp", "model": "gpt-4.1-nano", "provider": "openai", "api_base": like},
        {"name": "emb", "model": "text-embedding-3-small", "provider": "openai", "api_base": like},
        {"name": "plain", "model": f"ledger-{RUN}", "api_base": fake_upstream.base_url, "price": PRICE},
        {"name": "no-done", "model": NO_DONE, "api_base": fake_upstream.base_url, "price": PRICE},
        {"name": "slow", "model": "fake-model", "api_base": slow, "price": PRICE},
        {
            "name": "slow-timeout",
            "model": "fake-model",
            "api_base": slow,
            "price": PRICE,
            "timeout": 0.5,
            "max_retries": 0,
        },
    ]
    config = write_config(tmp / "modelmeter.toml", database=sqlite_url(tmp / "mm.db"), deployments=deployments)
    with ServerProcess(config, log_dir=tmp / "server") as srv:
        yield srv


def client(server: ServerProcess, timeout: float = 20) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=timeout)


def spend(model: str, prompt: int, completion: int) -> Decimal:
    return Pricer().cost(provider="openai", model=model, prompt_tokens=prompt, completion_tokens=completion).spend


def only_record(server: ServerProcess, deployment: str, timeout: float = 10.0) -> dict[str, Any]:
    [rec] = server.wait_for_records(deployment, 1, timeout=timeout)
    return server.record(rec["id"])


# --- 1. pricing follows the configured model ------------------------------------------------


def test_an_upstream_answering_another_model_is_priced_as_the_configured_one(server: ServerProcess) -> None:
    r = client(server).chat.completions.create(model="mini", messages=MSGS)  # type: ignore[arg-type]
    assert r.model == "gpt-4o"  # the upstream says it used another model
    rec = only_record(server, "mini")
    assert (rec["prompt_tokens"], rec["completion_tokens"]) == (PROMPT, 7)
    assert Decimal(str(rec["spend"])) == spend("gpt-4o-mini", PROMPT, 7) > 0
    assert rec["model_id"] == "gpt-4o" and rec["priced_model"] == "gpt-4o-mini"
    assert spend("gpt-4o", PROMPT, 7) > 10 * spend("gpt-4o-mini", PROMPT, 7)  # what it was priced at
    assert rec["price_source"] == GENAI_SOURCE


def test_a_dated_snapshot_of_the_configured_model_is_priced_as_the_snapshot(server: ServerProcess) -> None:
    r = client(server).chat.completions.create(model="dated", messages=MSGS)  # type: ignore[arg-type]
    assert r.model == "gpt-4.1-mini-2025-04-14"
    rec = only_record(server, "dated")
    assert rec["priced_model"] == "gpt-4.1-mini-2025-04-14" and rec["price_source"] == GENAI_SOURCE
    assert Decimal(str(rec["spend"])) == spend("gpt-4.1-mini-2025-04-14", PROMPT, 7) > 0


def test_an_unknown_answered_id_is_not_priced_at_zero(server: ServerProcess) -> None:
    client(server).chat.completions.create(model="nano", messages=MSGS)  # type: ignore[arg-type]
    rec = only_record(server, "nano")
    assert rec["price_source"] == GENAI_SOURCE
    assert Decimal(str(rec["spend"])) == spend("gpt-4.1-nano", PROMPT, 7) > 0
    assert rec["model_id"] == f"mystery-model-{RUN}" and rec["priced_model"] == "gpt-4.1-nano"
    assert sum(Decimal(str(c["cost"])) for c in rec["cost_breakdown"]) == Decimal(str(rec["spend"]))


# --- 2. a complete stream without [DONE] ------------------------------------------------------


def test_a_complete_stream_without_done_is_a_success(server: ServerProcess) -> None:
    chunks = list(
        client(server).chat.completions.create(
            model="no-done", messages=MSGS, stream=True, stream_options={"include_usage": True}
        )
    )  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT7
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    rec = only_record(server, "no-done")
    assert (rec["status"], rec["http_status"], rec["error"]) == ("success", 200, None)
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["usage_estimated"]) == (PROMPT, 7, False)


# --- 3. abandoned non-streamed calls ----------------------------------------------------------


def test_a_client_that_hangs_up_leaves_a_record_of_the_real_usage(server: ServerProcess) -> None:
    t = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client(server, timeout=0.4).chat.completions.create(model="slow", messages=MSGS)  # type: ignore[arg-type]
    assert time.monotonic() - t < SLOW_MS / 1000  # the client did leave before the answer
    rec = only_record(server, "slow", timeout=15)
    assert (rec["status"], rec["http_status"], rec["error"]) == ("error", 499, "client_disconnected")
    # The upstream's answer arrived after the client left; its usage is what will be billed.
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["usage_estimated"]) == (PROMPT, 7, False)
    assert Decimal(str(rec["spend"])) == Decimal(PROMPT * 1 + 7 * 2) / 10**6
    assert rec["latency_ms"] < SLOW_MS  # the client's wait, not the upstream's
    assert rec["response"]["choices"][0]["message"]["content"] == TEXT7


def test_a_gateway_timeout_estimates_the_prompt(server: ServerProcess) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client(server).chat.completions.create(model="slow-timeout", messages=MSGS)  # type: ignore[arg-type]
    assert info.value.status_code == 504
    rec = only_record(server, "slow-timeout")
    assert (rec["status"], rec["http_status"]) == ("error", 504)
    assert rec["prompt_tokens"] > 0 and rec["usage_estimated"] is True
    assert Decimal(str(rec["spend"])) == Decimal(rec["prompt_tokens"] * 1 + rec["completion_tokens"] * 2) / 10**6
    # An error the gateway answers itself names its record too.
    assert info.value.response.headers["x-request-id"] == rec["request_id"] == rec["id"]


# --- 4. x-request-id and the upstream's headers -----------------------------------------------


def test_the_upstreams_request_id_and_rate_limit_headers_reach_the_client(server: ServerProcess) -> None:
    raw = client(server).chat.completions.with_raw_response.create(model="mini", messages=MSGS)  # type: ignore[arg-type]
    r = raw.parse()
    assert r._request_id is not None and r._request_id.startswith("req_")
    assert raw.headers["x-ratelimit-limit-requests"] == "500"
    assert raw.headers["x-ratelimit-remaining-requests"] == "499"
    assert raw.headers["openai-processing-ms"] == "12" and raw.headers["openai-version"] == "2020-10-01"
    assert "openai-organization" not in raw.headers and "set-cookie" not in raw.headers
    recs = server.wait_for_records("mini", 2)
    assert r._request_id in [x["request_id"] for x in recs]


def test_streams_and_embeddings_carry_the_upstreams_request_id(server: ServerProcess) -> None:
    stream = client(server).chat.completions.create(model="dated", messages=MSGS, stream=True)  # type: ignore[arg-type]
    sid = stream.response.headers["x-request-id"]
    assert sid.startswith("req_") and stream.response.headers["x-ratelimit-limit-requests"] == "500"
    list(stream)
    emb = client(server).embeddings.with_raw_response.create(model="emb", input="hello there")
    eid = emb.headers["x-request-id"]
    assert eid.startswith("req_") and emb.parse().data
    assert only_record(server, "emb")["request_id"] == eid
    assert sid in [x["request_id"] for x in server.wait_for_records("dated", 2)]


def test_without_an_upstream_request_id_the_answers_own_id_is_returned(server: ServerProcess) -> None:
    c = client(server)
    r = c.chat.completions.create(model="plain", messages=MSGS)  # type: ignore[arg-type]
    assert r._request_id == r.id  # the completion's id: the upstream sent no x-request-id
    stream = c.chat.completions.create(model="plain", messages=MSGS, stream=True)  # type: ignore[arg-type]
    chunks = list(stream)
    assert stream.response.headers["x-request-id"] == chunks[0].id
    ids = {x["request_id"] for x in server.wait_for_records("plain", 2)}
    assert ids == {r.id, chunks[0].id}


# --- 5. the stored body of a streamed call ----------------------------------------------------


def test_a_streamed_calls_stored_body_holds_what_the_client_received(server: ServerProcess) -> None:
    stream = client(server).chat.completions.create(
        model="lp",
        messages=MSGS,
        stream=True,
        logprobs=True,
        top_logprobs=1,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    stored = only_record(server, "lp")["response"]
    sent_logprobs = [
        lp.model_dump()
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for lp in c.choices[0].logprobs.content or ()
    ]
    assert len(sent_logprobs) == 7
    choice = stored["choices"][0]
    assert choice["logprobs"]["content"] == sent_logprobs
    assert choice["message"]["content"] == TEXT7 and choice["finish_reason"] == "stop"
    assert stored["system_fingerprint"] == chunks[0].system_fingerprint == FINGERPRINT
    assert stored["service_tier"] == chunks[0].service_tier == "default"
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert stored["usage"] == usage.model_dump(exclude_none=True)
    assert stored["usage"]["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert stored["id"] == chunks[0].id and stored["model"] == chunks[0].model
