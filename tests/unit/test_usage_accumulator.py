"""Usage parsing and the stream accumulator: usage, ids, text, tool calls, choices, completions."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelmeter.metering.usage import MAX_TOKENS, StreamAccumulator, Usage


def chunk(*choices: dict[str, Any], usage: Any = None, **head: Any) -> bytes:
    body: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "m",
        **head,
        "choices": list(choices),
    }
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def delta(index: int = 0, finish: str | None = None, **d: Any) -> dict[str, Any]:
    return {"index": index, "delta": d, "finish_reason": finish}


# --- Usage.from_openai ----------------------------------------------------------------------


def test_usage_from_openai() -> None:
    u = Usage.from_openai(
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 3},
        }
    )
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (10, 5, 15)
    assert (u.cached_tokens, u.cache_write_tokens, u.reasoning_tokens, u.reported) == (4, 2, 3, True)


def test_usage_total_defaults_to_the_sum_and_details_may_be_null() -> None:
    u = Usage.from_openai(
        {"prompt_tokens": 3, "completion_tokens": 4, "prompt_tokens_details": None, "completion_tokens_details": None}
    )
    assert (u.total_tokens, u.cached_tokens, u.reasoning_tokens) == (7, 0, 0)


@pytest.mark.parametrize("value", [None, [], "x", 3])
def test_usage_that_is_not_an_object(value: Any) -> None:
    u = Usage.from_openai(value)
    assert u == Usage() and u.reported is False


@pytest.mark.parametrize(
    ("raw", "expected"), [(-5, 0), (True, 0), (2.5, 0), ("7", 0), (None, 0), (2**64 - 1, MAX_TOKENS), (12, 12)]
)
def test_usage_counts_are_sane_ints(raw: Any, expected: int) -> None:
    u = Usage.from_openai({"prompt_tokens": raw, "completion_tokens": raw})
    assert u.prompt_tokens == expected and isinstance(u.prompt_tokens, int)
    assert u.total_tokens == 2 * expected


# --- chat streams ---------------------------------------------------------------------------


def test_chat_stream_text_usage_and_response() -> None:
    acc = StreamAccumulator("chat")
    assert acc.add(chunk(delta(role="assistant", content=""))) == 0  # role only: no content yet
    assert acc.add(chunk(delta(content="Hel"))) == 1
    assert acc.add(chunk(delta(content="lo"))) == 1
    assert acc.add(chunk(delta(finish="stop"))) == 0
    assert not acc.last_usage_only and not acc.usage.reported
    usage = {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10}
    assert acc.add(chunk(usage=usage)) == 0
    assert acc.last_usage_only and acc.usage.reported and acc.usage.completion_tokens == 2
    assert (acc.id, acc.model, acc.created, acc.chunks) == ("c1", "m", 5, 5)
    assert acc.text() == "Hello" == acc.all_text()
    assert acc.response() == {
        "id": "c1",
        "object": "chat.completion",
        "created": 5,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
    }


def test_usage_on_a_content_chunk_and_null_usage() -> None:
    acc = StreamAccumulator("chat")
    acc.add(chunk(delta(content="a"), usage=None))
    acc.add(orjson.dumps({"id": "c1", "choices": [delta(content="b")], "usage": None}))
    assert not acc.usage.reported
    assert acc.add(chunk(delta(content="c", finish="stop"), usage={"prompt_tokens": 1, "completion_tokens": 3})) == 1
    assert acc.usage.reported and not acc.last_usage_only and acc.usage.total_tokens == 4


def test_the_first_chunk_names_the_response() -> None:
    acc = StreamAccumulator("chat")
    acc.add(chunk(delta(content="a"), id="first", model="m1"))
    acc.add(chunk(delta(content="b"), id="second", model="m2"))
    assert (acc.id, acc.model) == ("first", "m1")


def test_multiple_choices() -> None:
    acc = StreamAccumulator("chat")
    acc.add(chunk(delta(0, role="assistant"), delta(1, role="assistant")))
    assert acc.add(chunk(delta(0, content="A"), delta(1, content="X"))) == 2
    acc.add(chunk(delta(1, content="Y")))
    acc.add(chunk(delta(0, finish="stop"), delta(1, finish="length")))
    assert acc.text(0) == "A" and acc.text(1) == "XY" and acc.all_text() == "AXY"
    choices = acc.response()["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "A", "stop"),
        (1, "XY", "length"),
    ]


def test_tool_calls_are_reassembled() -> None:
    acc = StreamAccumulator("chat")
    first = [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_", "arguments": ""}},
        {"index": 1, "id": "call_b", "type": "function", "function": {"name": "time", "arguments": "{}"}},
    ]
    assert acc.add(chunk(delta(role="assistant", content=None, tool_calls=first))) == 1
    assert acc.add(chunk(delta(tool_calls=[{"index": 0, "function": {"name": "weather", "arguments": '{"c":'}}]))) == 1
    acc.add(chunk(delta(tool_calls=[{"index": 0, "function": {"arguments": '"Oslo"}'}}])))
    acc.add(chunk(delta(finish="tool_calls")))
    (choice,) = acc.response()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"c":"Oslo"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": "{}"}},
    ]
    assert acc.all_text() == 'get_weather{"c":"Oslo"}time{}'  # what an estimate counts


def test_reasoning_content_counts_as_produced() -> None:
    acc = StreamAccumulator("chat")
    assert acc.add(chunk(delta(reasoning_content="thinking"))) == 1
    assert acc.text() == "thinking"


def test_completion_stream() -> None:
    acc = StreamAccumulator("completion")
    head = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "base"}
    for piece in ("Once", " upon"):
        assert acc.add(orjson.dumps({**head, "choices": [{"index": 0, "text": piece, "finish_reason": None}]})) == 1
    acc.add(orjson.dumps({**head, "choices": [{"index": 0, "text": "", "finish_reason": "length"}]}))
    acc.add(orjson.dumps({**head, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}))
    assert acc.response() == {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "base",
        "choices": [{"index": 0, "text": "Once upon", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }


def test_empty_stream_response() -> None:
    acc = StreamAccumulator("chat")
    assert acc.response()["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": None}
    ]
    assert "usage" not in acc.response() and acc.all_text() == ""


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1,2]",
        b"null",
        b'"s"',
        b'{"choices": "x"}',
        b'{"choices": [1, null, "x"]}',
        b'{"choices": [{"index": "0", "delta": {"content": "ok"}}]}',
        b'{"choices": [{"index": [1], "delta": "text"}]}',
        b'{"choices": [{"delta": {"content": 5, "role": 7}, "finish_reason": 3}]}',
        b'{"choices": [{"delta": {"tool_calls": [1, {"index": "a", "id": 3, "function": {"name": 1}}]}}]}',
        b'{"choices": [{"delta": {"tool_calls": "nope"}}]}',
        b'{"id": 7, "model": {"x": 1}, "created": "yesterday", "choices": []}',
        b'{"usage": [1], "choices": []}',
    ],
)
def test_garbage_never_raises_and_stays_well_typed(data: bytes) -> None:
    acc = StreamAccumulator("chat")
    acc.add(data)
    assert acc.id is None or isinstance(acc.id, str)
    assert acc.model is None or isinstance(acc.model, str)
    assert acc.created is None or isinstance(acc.created, int)
    assert isinstance(acc.all_text(), str)
    orjson.dumps(acc.response())  # always serialisable
