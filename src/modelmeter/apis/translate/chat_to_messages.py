"""Chat client -> Anthropic Messages upstream: the request, and the Messages answer as a chat.completion.

Anthropic takes the system prompt apart from the turns, needs ``max_tokens``, wants tool results as
``tool_result`` blocks inside a user turn and strictly alternating roles, so consecutive turns of
one role (a run of ``tool`` messages, then the user's next words) are merged into one. Its
``input_tokens`` leaves out cache reads and writes; chat's ``prompt_tokens`` counts every input
token, so the answer adds them back and reports the reads as ``cached_tokens``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from modelmeter.apis.translate.wire import TranslationError, dumps, loads_object, new_id, text_of

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; chat clients often send none
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)


def _image(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    found = DATA_URL.fullmatch(url)
    if found:
        return {"type": "image", "source": {"type": "base64", "media_type": found[1], "data": found[2]}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError(f"{where}: an image must be a data: or http(s) URL", where)


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):  # Anthropic refuses empty text blocks
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part, f"{where}.{j}"))
        elif kind == "refusal":
            blocks.append({"type": "text", "text": part.get("refusal", "")})
        else:
            raise TranslationError(
                f"{where}.{j}: content of type {kind!r} cannot be sent to this model", f"{where}.{j}"
            )
    return blocks


def _turn(message: Mapping[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    role = message.get("role")
    if role == "user":
        return "user", _blocks(message.get("content"), f"{where}.content")
    if role == "assistant":
        blocks = _blocks(message.get("content"), f"{where}.content")
        for k, call in enumerate(message.get("tool_calls") or []):
            fn = call.get("function") or {}
            arguments = loads_object(fn.get("arguments"), f"{where}.tool_calls.{k}.function.arguments")
            blocks.append(
                {"type": "tool_use", "id": call.get("id", ""), "name": fn.get("name", ""), "input": arguments}
            )
        return "assistant", blocks
    if role in ("tool", "function"):
        result = {
            "type": "tool_result",
            "tool_use_id": message.get("tool_call_id", ""),
            "content": text_of(message.get("content")),
        }
        return "user", [result]
    raise TranslationError(f"{where}.role {role!r} is not a chat role", f"{where}.role")


def _messages(messages: list[Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.get("role") in ("system", "developer"):
            system.append(text_of(message.get("content")))
            continue
        role, blocks = _turn(message, f"messages.{i}")
        if not blocks:
            continue  # an empty assistant turn: Anthropic refuses empty content
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    picked: dict[str, Any] | None = None
    if choice == "auto":
        picked = {"type": "auto"}
    elif choice == "required":
        picked = {"type": "any"}
    elif choice == "none":
        picked = {"type": "none"}
    elif isinstance(choice, Mapping) and choice.get("type") == "function":
        picked = {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    if parallel is False:
        picked = picked or {"type": "auto"}
        if picked["type"] != "none":
            picked["disable_parallel_tool_use"] = True
    return picked


def request(
    body: Mapping[str, Any], model: str | None = None, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    """A chat.completions request body -> a Messages request body."""
    if (body.get("n") or 1) != 1:
        raise TranslationError("n other than 1 cannot be sent to this model", "n")
    system, turns = _messages(list(body.get("messages") or []))
    out: dict[str, Any] = {"model": model or body.get("model"), "messages": turns}
    out["max_tokens"] = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    if system:
        out["system"] = "\n\n".join(system)
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    tools = [t.get("function") or {} for t in body.get("tools") or [] if t.get("type") == "function"]
    if tools:
        out["tools"] = [
            {
                "name": fn.get("name", ""),
                "description": fn.get("description", ""),
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
            for fn in tools
        ]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice and tools:
        out["tool_choice"] = choice
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        out["stream"] = True
    return out


def usage(messages_usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """Messages usage -> chat usage: ``prompt_tokens`` counts cache reads and writes too."""
    u = messages_usage or {}
    read = u.get("cache_read_input_tokens") or 0
    written = u.get("cache_creation_input_tokens") or 0
    prompt = (u.get("input_tokens") or 0) + read + written
    completion = u.get("output_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
    }


def answer(message: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """A Messages answer -> a chat.completion answer (``openai.types.chat.ChatCompletion``); ``model`` names it."""
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "thinking":
            thinking.append(block.get("thinking", ""))
        elif block.get("type") == "tool_use":
            fn = {"name": block.get("name", ""), "arguments": dumps(block.get("input") or {})}
            calls.append({"id": block.get("id") or new_id("call_"), "type": "function", "function": fn})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    if thinking:  # the field vLLM and llama.cpp use; the chat stream carries it the same way
        reply["reasoning_content"] = "".join(thinking)
    return {
        "id": "chatcmpl-" + str(message.get("id") or new_id("")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model or message.get("model") or "",
        "choices": [
            {"index": 0, "message": reply, "logprobs": None, "finish_reason": finish_reason(message.get("stop_reason"))}
        ],
        "usage": usage(message.get("usage")),
    }


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "end_turn", "stop")
