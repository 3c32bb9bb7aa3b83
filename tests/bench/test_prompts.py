"""Synthetic prompts of an exact token length, data sets, and the request bodies built from them."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from modelmeter.bench import prompts
from modelmeter.bench.eval import EvalConfig, bundled_dataset, grade, load_items
from modelmeter.bench.runner import BenchError
from modelmeter.metering import tokens


@pytest.mark.parametrize("model", ["gpt-4o-mini", "smollm2-135m-instruct"])
@pytest.mark.parametrize("n", [16, 128, 1000])
def test_synthetic_prompts_have_the_asked_length(model: str, n: int) -> None:
    chat = prompts.synthetic("chat", model, n, count=5, seed=1)
    assert [tokens.count_chat_prompt(p.body["messages"], model) for p in chat] == [n] * 5
    assert len({p.body["messages"][0]["content"] for p in chat}) == 5  # distinct prompts
    for endpoint, key in (("completions", "prompt"), ("embeddings", "input")):
        for p in prompts.synthetic(endpoint, model, n, count=3, seed=2):
            assert tokens.count_text(p.body[key], model) == n == p.prompt_tokens
    again = prompts.synthetic("chat", model, n, 2, seed=7)
    assert again[0].body == prompts.synthetic("chat", model, n, 2, seed=7)[0].body  # seeded


def test_request_body_streams_with_usage_and_caps_output() -> None:
    p = prompts.synthetic("chat", "gpt-4o", 20, 1)[0]
    body = orjson.loads(prompts.request_body(p, "m", "chat", stream=True, max_tokens=32, metadata={"bench_run": "r1"}))
    assert body["model"] == "m" and body["stream"] is True and body["max_tokens"] == 32
    assert body["stream_options"] == {"include_usage": True}
    assert body["metadata"] == {"bench_run": "r1"}
    plain = orjson.loads(prompts.request_body(p, "m", "chat", stream=False, max_tokens=None, metadata=None))
    assert "stream" not in plain and "metadata" not in plain and "max_tokens" not in plain
    emb = prompts.synthetic("embeddings", "m", 8, 1)[0]
    body = orjson.loads(prompts.request_body(emb, "m", "embeddings", stream=True, max_tokens=5, metadata=None))
    assert set(body) == {"model", "input"}


def test_dataset_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [
        {"prompt": "hello there", "max_tokens": 3},
        {
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "temperature": 0.5,
            "stream": True,
            "model": "ignored",
        },
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n# a comment\n")
    got = prompts.load_dataset(path, "chat", "gpt-4o")
    assert got[0].body == {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 3}
    assert got[1].body["temperature"] == 0.5 and "model" not in got[1].body
    body = orjson.loads(prompts.request_body(got[1], "real", "chat", stream=False, max_tokens=None, metadata=None))
    assert body["model"] == "real" and "stream" not in body
    with pytest.raises(prompts.DatasetError, match=":2: a chat request"):
        prompts.load_dataset(path, "completions", "m")
    path.write_text('{"prompt": "one two"}\n{"input": ["a", "b"]}\n')
    assert prompts.load_dataset(path, "embeddings", "m")[0].body == {"input": "one two"}
    assert prompts.load_dataset(path, "embeddings", "m")[1].body == {"input": ["a", "b"]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{oops", ":1: not valid JSON"),
        ("[1, 2]", ":1: each line must be a JSON object"),
        ('{"text": "x"}', "needs 'prompt', 'messages' or 'input'"),
        ("", "has no requests"),
    ],
)
def test_bad_datasets(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(prompts.DatasetError, match=message):
        prompts.load_dataset(path, "chat", "m")
    with pytest.raises(prompts.DatasetError, match="cannot read"):
        prompts.load_dataset(tmp_path / "missing.jsonl", "chat", "m")


def test_grading() -> None:
    assert grade(" Paris. ", "paris", "exact")
    assert not grade("Paris is the capital", "paris", "exact")
    assert grade("It is Paris, I think", "PARIS", "contains")
    assert grade("the answer: 42", r"\b42\b", "regex") and not grade("420", r"\b42\b", "regex")
    assert grade("blue", ["red", "blue"], "exact")
    assert not grade(None, "x", "contains")


def test_bundled_dataset_is_fifty_answered_questions() -> None:
    items = load_items(EvalConfig(model="gpt-4o", run_id="t"))
    assert len(items) == 50 and bundled_dataset().is_file()
    for item in items:
        assert item.match == "number" and item.expected
        # the right answer in a sentence counts, a longer number or a token name does not
        assert grade(f"The answer is {item.expected}.", item.expected, item.match), item
        assert grade(str(item.expected), item.expected, item.match)
        assert not grade(f"1{item.expected}0", item.expected, item.match)
        assert not grade(f"tok{item.expected}", item.expected, item.match)


def test_eval_dataset_checks(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"prompt": "2+2?"}\n')
    with pytest.raises(BenchError, match="needs 'expected'"):
        load_items(EvalConfig(model="m", run_id="t", dataset=str(path)))
    path.write_text('{"prompt": "2+2?", "expected": "(4", "match": "regex"}\n')
    with pytest.raises(BenchError, match="bad regex"):
        load_items(EvalConfig(model="m", run_id="t", dataset=str(path)))
    path.write_text('{"prompt": "2+2?", "expected": "4", "match": "fuzzy"}\n')
    with pytest.raises(BenchError, match="'match' must be"):
        load_items(EvalConfig(model="m", run_id="t", dataset=str(path)))
