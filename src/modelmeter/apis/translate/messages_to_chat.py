"""Anthropic Messages client -> OpenAI chat upstream: the request, and the chat answer back.

Anthropic keeps tool results inside the user's turn and tool calls inside the assistant's content;
chat wants them as ``tool`` messages and ``tool_calls``. Anthropic's ``input_tokens`` leaves out
cache reads, which chat's ``prompt_tokens`` includes: the answer subtracts them so each token is
counted once whichever door it is read at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelmeter.apis.translate.wire import TranslationError, dumps, lenient_object, new_id, text_of

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _image_part(block: Mapping[str, Any]) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = source.get("url", "")
    else:
        raise TranslationError("only base64 and url image sources can be sent to this model", "messages")
    return {"type": "image_url", "image_url": {"url": url}}


def _user_turn(content: Any) -> list[dict[str, Any]]:
    """A user turn: tool results first (chat wants them right after the assistant's calls), then the rest."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type")
        if kind == "tool_result":
            text = text_of(block.get("content"))
            if block.get("is_error"):
                text = "Error: " + text
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text})
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append(_image_part(block))
        elif kind == "document":
            raise TranslationError("document blocks cannot be sent to this model", "messages")
        # thinking, redacted_thinking, cache hints: nothing chat can carry
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        # plain strings for text-only turns: local servers (llama.cpp templates) read them best
        joined = "\n".join(p["text"] for p in parts) if only_text else parts
        out.append({"role": "user", "content": joined})
    return out


def _assistant_turn(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            args = dumps(block.get("input") or {})
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": args},
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_choice(choice: Mapping[str, Any], chat: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    if choice.get("disable_parallel_tool_use"):
        chat["parallel_tool_calls"] = False


def request(body: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """A Messages request body -> a chat.completions request body (``model`` overrides the client's)."""
    messages: list[dict[str, Any]] = []
    # System text, the top-level field's and any system turn's (Claude Code sends its environment as
    # one after the user's turn), goes in one leading system message: many chat templates refuse a
    # system message elsewhere, and small models continue the last text they see.
    systems = [text_of(body["system"])] if body.get("system") else []
    systems += [text_of(t.get("content", "")) for t in body.get("messages") or [] if t.get("role") == "system"]
    if systems:
        messages.append({"role": "system", "content": "\n\n".join(systems)})
    for i, turn in enumerate(body.get("messages") or []):
        role = turn.get("role")
        if role == "user":
            messages += _user_turn(turn.get("content", ""))
        elif role == "assistant":
            messages.append(_assistant_turn(turn.get("content", "")))
        elif role == "system":
            continue  # in the leading system message
        else:
            raise TranslationError(f"messages.{i}.role must be user, assistant or system", f"messages.{i}.role")
    chat: dict[str, Any] = {"model": model or body.get("model"), "messages": messages}
    if "max_tokens" in body:
        chat["max_tokens"] = body["max_tokens"]
    if body.get("stop_sequences"):
        chat["stop"] = list(body["stop_sequences"])
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # the usage comes in a last chunk
    tools = [t for t in body.get("tools") or [] if "input_schema" in t]  # server tools have no chat form
    if tools:
        chat["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description", ""),
                    "parameters": t["input_schema"],
                },
            }
            for t in tools
        ]
    if body.get("tool_choice"):
        _tool_choice(body["tool_choice"], chat)
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user
    return chat


def usage(chat_usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """Chat usage -> Messages usage; cache reads move out of ``input_tokens`` into their own field."""
    chat_usage = chat_usage or {}
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "input_tokens": (chat_usage.get("prompt_tokens") or 0) - cached,
        "output_tokens": chat_usage.get("completion_tokens") or 0,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def answer(chat: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """A chat.completion answer -> a Messages answer (``anthropic.types.Message``); ``model`` names it."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")  # vLLM, llama.cpp
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": fn.get("name", ""),
                "input": lenient_object(fn.get("arguments")),
            }
        )
    return {
        "id": "msg_" + str(chat.get("id") or new_id("")),
        "type": "message",
        "role": "assistant",
        "model": model or chat.get("model") or "",
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage(chat.get("usage")),
    }
