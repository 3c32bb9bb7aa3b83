"""End to end with the embedded SmolLM2 model: the server starts its llama.cpp worker, and what the
client is told about tokens is what the usage API adds up."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.helpers import ServerProcess

MODEL = "smollm2-135m-instruct"
MSGS = [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "Name one colour."}]


@pytest.mark.model
def test_embedded_smollm2_streamed_and_not(make_config: Any, tmp_path: Any) -> None:
    config = make_config(deployments=[{"name": MODEL, "provider": "local"}], local_threads=1)
    with ServerProcess(config, log_dir=tmp_path / "server", startup_timeout=180) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=120)
        whole = client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=12, temperature=0)
        assert whole.usage is not None and whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0
        assert whole.choices[0].message.content

        chunks = list(
            client.chat.completions.create(
                model=MODEL,
                messages=MSGS,
                max_tokens=12,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        usage = chunks[-1].usage
        assert usage is not None and chunks[-1].choices == [] and usage.completion_tokens > 0
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text

        streamed_rec, whole_rec = server.wait_for_records(MODEL, 2)
        status, summary = server.api("GET", f"/api/deployments/{MODEL}/usage?window=1h")
        assert status == 200
        assert (summary["requests"], summary["succeeded"], summary["failed"]) == (2, 2, 0)
        assert summary["prompt_tokens"] == whole.usage.prompt_tokens + usage.prompt_tokens
        assert summary["completion_tokens"] == whole.usage.completion_tokens + usage.completion_tokens
        assert summary["spend"] == 0 and summary["avg_ttft_ms"] > 0

        for rec, told in ((whole_rec, whole.usage), (streamed_rec, usage)):
            assert (rec["prompt_tokens"], rec["completion_tokens"]) == (told.prompt_tokens, told.completion_tokens)
            assert rec["provider"] == "local" and rec["price_source"] == "local" and rec["usage_estimated"] is False
            assert rec["status"] == "success" and rec["client_ip"] == "127.0.0.0"
            assert 0 < rec["ttft_ms"] <= rec["latency_ms"]
        assert streamed_rec["stream"] is True and whole_rec["stream"] is False
        body = server.record(streamed_rec["id"])["response"]
        assert body["choices"][0]["message"]["content"] == text
