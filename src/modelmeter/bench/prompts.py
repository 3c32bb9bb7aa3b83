"""What the benchmark sends: synthetic prompts of an exact token length, or a JSONL data set, made
into request bodies for chat, completions or embeddings.

Synthetic prompts are counted with the gateway's own tokenizer (``metering.tokens``): for chat the
whole prompt, message framing included, is ``input_tokens`` long as OpenAI counts it, so a server
reporting OpenAI-style usage reports exactly that many prompt tokens. Other models' tokenizers
differ, and the usage they report is what the figures use.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from modelmeter.bench.grading import GradingError, check_expected
from modelmeter.metering import tokens

ENDPOINTS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}
CALL_TYPES = {"chat": "chat", "completions": "completion", "embeddings": "embedding"}
_DROP = ("expected", "match", "answer", "tolerance", "id", "model")  # evaluation keys; the run sets the model

# Common words; those that are one token alone and after a space (in the model's encoding) are used,
# so a prompt of k such words separated by spaces is exactly k tokens long.
_WORDS_FILE = "words.txt"  # in bench/data: the words, separated by spaces


@dataclass(slots=True)
class Prompt:
    body: dict[str, Any]  # a request body without model, stream or run metadata
    prompt_tokens: int  # as counted here (used only when the server reports no usage)
    expected: Any = None  # evaluation: the expected answer
    match: str = "contains"  # evaluation: a grader of bench.grading.MATCHES
    answer: str | None = None  # evaluation: the right answer as shown (``expected`` may be a regex)
    tolerance: Any = None  # evaluation, number: absolute, or relative as "1%"


class DatasetError(ValueError):
    """A data set that cannot be used; the message names the file and line."""


def _words() -> list[str]:
    return resources.files("modelmeter.bench").joinpath("data", _WORDS_FILE).read_text().split()


def _single_token_words(model: str) -> list[str]:
    enc = tokens.encoding_for(model)
    words = [
        w
        for w in dict.fromkeys(_words())
        if len(enc.encode_ordinary(w)) == 1 and len(enc.encode_ordinary(" " + w)) == 1
    ]
    if len(words) < 20:  # an encoding without common English words: fall back to digits
        words = [str(i) for i in range(10)]
    return words


def _text(words: list[str], rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(words) for _ in range(max(n, 1)))


def _count(endpoint: str, body: dict[str, Any], model: str) -> int:
    if endpoint == "chat":
        return tokens.count_chat_prompt(body.get("messages") or [], model)
    if endpoint == "completions":
        return tokens.count_completion_prompt(body.get("prompt"), model)
    return tokens.count_embedding_input(body.get("input"), model)


def _wrap(endpoint: str, text: str) -> dict[str, Any]:
    if endpoint == "chat":
        return {"messages": [{"role": "user", "content": text}]}
    if endpoint == "completions":
        return {"prompt": text}
    return {"input": text}


def synthetic(endpoint: str, model: str, input_tokens: int, count: int, seed: int = 0) -> list[Prompt]:
    """``count`` distinct prompts of ``input_tokens`` tokens each: exactly, unless that is less
    than the chat framing (then one word more than the framing)."""
    words = _single_token_words(model)
    framing = _count(endpoint, _wrap(endpoint, ""), model)
    rng = random.Random(seed)
    n = max(input_tokens - framing, 1)
    out: list[Prompt] = []
    for _ in range(count):
        body = _wrap(endpoint, _text(words, rng, n))
        out.append(Prompt(body, _count(endpoint, body, model)))
    return out


def load_dataset(path: str | Path, endpoint: str, model: str, *, evaluation: bool = False) -> list[Prompt]:
    """JSONL: each line a request body, or ``{"prompt": …}`` (plus ``expected``/``match`` for
    evaluation); blank lines and lines starting with ``#`` are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read data set {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DatasetError(f"data set {path} is not UTF-8 text") from None
    out: list[Prompt] = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{where}: each line must be a JSON object")
        out.append(_from_line(obj, endpoint, model, where, evaluation))
    if not out:
        raise DatasetError(f"data set {path} has no requests")
    return out


def _from_line(obj: dict[str, Any], endpoint: str, model: str, where: str, evaluation: bool) -> Prompt:
    body = {k: v for k, v in obj.items() if k not in _DROP}
    if "messages" in body:
        if endpoint != "chat":
            raise DatasetError(f"{where}: a chat request ('messages') cannot go to {endpoint}")
        if not isinstance(body["messages"], list) or not body["messages"]:
            raise DatasetError(f"{where}: 'messages' must be a non-empty array")
    elif "input" in body:
        if endpoint != "embeddings":
            raise DatasetError(f"{where}: an embeddings request ('input') cannot go to {endpoint}")
    elif "prompt" in body:
        prompt = body.pop("prompt")
        if not isinstance(prompt, str | list) or not prompt:
            raise DatasetError(f"{where}: 'prompt' must be a non-empty string or array")
        if endpoint == "chat":
            if not isinstance(prompt, str):
                raise DatasetError(f"{where}: a chat 'prompt' must be a string")
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt" if endpoint == "completions" else "input"] = prompt
    else:
        raise DatasetError(f"{where}: needs 'prompt', 'messages' or 'input'")
    match = obj.get("match", "contains")
    if evaluation:
        if "expected" not in obj or obj["expected"] is None:
            raise DatasetError(f"{where}: needs 'expected' (the right answer)")
        try:
            check_expected(obj["expected"], str(match), obj.get("tolerance"))
        except GradingError as exc:
            raise DatasetError(f"{where}: {exc}") from None
    answer = obj.get("answer")
    return Prompt(
        body,
        _count(endpoint, body, model),
        obj.get("expected"),
        str(match),
        str(answer) if answer is not None else None,
        obj.get("tolerance"),
    )


def request_body(
    prompt: Prompt,
    model: str,
    endpoint: str,
    *,
    stream: bool,
    max_tokens: int | None,
    metadata: dict[str, Any] | None,
    defaults: dict[str, Any] | None = None,
) -> bytes:
    """The serialized body of one request (built once per prompt, sent many times); ``defaults``
    are fields a data set line may override (e.g. ``temperature``)."""
    body: dict[str, Any] = {**(defaults or {}), **prompt.body, "model": model}
    body.pop("stream", None)
    options = body.pop("stream_options", None)
    if endpoint != "embeddings":
        if stream:
            body["stream"] = True
            # Ask for the usage chunk: output tokens come from what the server reports.
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        if max_tokens is not None:
            body.pop("max_completion_tokens", None)
            body["max_tokens"] = max_tokens
    if metadata:
        existing = body.get("metadata")
        body["metadata"] = {**(existing if isinstance(existing, dict) else {}), **metadata}
    return orjson.dumps(body)
