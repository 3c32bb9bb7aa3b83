"""A streamed answer reassembled without loss (issue 11 item 5): every field the chunks carried."""

from __future__ import annotations

from typing import Any

import orjson

from modelmeter.metering.usage import StreamAccumulator

HEAD = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "created": 5,
    "model": "m",
    "system_fingerprint": "fp_1",
    "service_tier": "default",
    "obfuscation": "xyz",
}
USAGE = {
    "prompt_tokens": 9,
    "completion_tokens": 2,
    "total_tokens": 11,
    "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 1, "audio_tokens": 0},
}


def lp(token: str) -> dict[str, Any]:
    return {"token": token, "logprob": -0.5, "bytes": list(token.encode()), "top_logprobs": []}


def chunk(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None, **choice: Any) -> bytes:
    c = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish, **choice}
    return orjson.dumps({**HEAD, "choices": [c]})


def test_the_reassembled_chat_answer_keeps_every_field() -> None:
    acc = StreamAccumulator("chat")
    acc.add(chunk({"role": "assistant", "content": "", "refusal": None}))
    acc.add(chunk({"reasoning_content": "hm"}))
    acc.add(chunk({"content": "Hi"}, logprobs={"content": [lp("Hi")], "refusal": None}))
    acc.add(chunk({"content": "!"}, logprobs={"content": [lp("!")], "refusal": None}))
    acc.add(chunk({}, "stop", stop_reason=None))
    acc.add(chunk({}, None, stop_reason="eos"))
    acc.add(orjson.dumps({**HEAD, "choices": [], "usage": USAGE}))
    body = acc.response()
    assert (body["system_fingerprint"], body["service_tier"]) == ("fp_1", "default")
    assert "obfuscation" not in body  # per-chunk padding, meaningless once joined
    assert body["usage"] == USAGE
    [choice] = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": "Hi!", "reasoning_content": "hm"}
    assert choice["logprobs"] == {"content": [lp("Hi"), lp("!")]}
    assert choice["stop_reason"] == "eos" and choice["finish_reason"] == "stop"
    assert acc.finished()


def test_completion_logprobs_are_joined() -> None:
    acc = StreamAccumulator("completion")
    for i, piece in enumerate(("Once", " upon")):
        acc.add(
            orjson.dumps(
                {
                    "id": "x",
                    "choices": [
                        {
                            "index": 0,
                            "text": piece,
                            "finish_reason": None,
                            "logprobs": {"tokens": [piece], "text_offset": [i]},
                        }
                    ],
                }
            )
        )
    assert not acc.finished()
    acc.add(orjson.dumps({"id": "x", "choices": [{"index": 0, "text": "", "finish_reason": "length"}]}))
    [choice] = acc.response()["choices"]
    assert choice == {
        "index": 0,
        "text": "Once upon",
        "finish_reason": "length",
        "logprobs": {"tokens": ["Once", " upon"], "text_offset": [0, 1]},
    }
    assert acc.finished()
