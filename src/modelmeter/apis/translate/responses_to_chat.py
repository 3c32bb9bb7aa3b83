"""OpenAI Responses client -> chat upstream: the request, and the chat answer as a Response object.

Responses keeps the conversation as a list of items (messages, ``function_call``,
``function_call_output``) and the system prompt in ``instructions``; chat wants messages with
``tool_calls`` and ``tool`` messages. Stored state (``previous_response_id``, ``item_reference``)
does not exist on a chat upstream, so those are refused with a clear error rather than dropped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from modelmeter.apis.translate.wire import TranslationError, new_id

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def _part(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal", "")}
    if kind == "input_image" and part.get("image_url"):
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise TranslationError(f"{where}: content of type {kind!r} cannot be sent to this model", where)


def _content(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    parts = [_part(p, f"{where}.{j}") for j, p in enumerate(content or [])]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)  # plain strings suit local chat templates best
    return parts


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    for i, item in enumerate(items or []):
        where = f"input.{i}"
        kind = item.get("type", "message")
        if kind == "message":
            role = ROLES.get(item.get("role", ""))
            if role is None:
                raise TranslationError(f"{where}.role must be user, assistant, system or developer", f"{where}.role")
            messages.append({"role": role, "content": _content(item.get("content"), f"{where}.content")})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id", ""),
                "type": "function",
                "function": {"name": item.get("name", ""), "arguments": item.get("arguments") or "{}"},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":  # parallel calls share one assistant turn
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _content(output, f"{where}.output")
            if not isinstance(text, str):
                raise TranslationError(f"{where}.output: only text can be sent to this model", f"{where}.output")
            messages.append({"role": "tool", "tool_call_id": item.get("call_id", ""), "content": text})
        elif kind == "reasoning":
            continue  # the model's earlier reasoning: chat upstreams take none back
        else:
            raise TranslationError(f"{where}: items of type {kind!r} cannot be sent to this model", f"{where}.type")
    return messages


def _text_format(fmt: Mapping[str, Any]) -> dict[str, Any] | None:
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    return None


def request(body: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """A Responses request body -> a chat.completions request body."""
    if body.get("previous_response_id"):
        raise TranslationError("previous_response_id needs a Responses upstream", "previous_response_id")
    chat: dict[str, Any] = {"model": model or body.get("model"), "messages": _messages(body)}
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    for key in ("temperature", "top_p", "parallel_tool_calls"):
        if body.get(key) is not None:
            chat[key] = body[key]
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]  # hosted tools: none on chat
    if tools:
        chat["tools"] = [
            {
                "type": "function",
                "function": {k: t[k] for k in ("name", "description", "parameters", "strict") if t.get(k) is not None},
            }
            for t in tools
        ]
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        chat["tool_choice"] = choice
    elif isinstance(choice, Mapping) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    fmt = _text_format((body.get("text") or {}).get("format") or {})
    if fmt:
        chat["response_format"] = fmt
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    user = body.get("safety_identifier") or body.get("user")
    if user:
        chat["user"] = user
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def usage(chat_usage: Mapping[str, Any] | None) -> dict[str, Any]:
    u = chat_usage or {}
    prompt, completion = u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0
    prompt_details = u.get("prompt_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": prompt_details.get("cached_tokens") or 0,
            "cache_write_tokens": prompt_details.get("cache_write_tokens") or 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": (u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
        },
        "total_tokens": u.get("total_tokens") or prompt + completion,
    }


def message_item(text: str, item_id: str, status: str = "completed") -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" else []
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def reasoning_item(text: str, item_id: str) -> dict[str, Any]:
    content = [{"type": "reasoning_text", "text": text}]
    return {"type": "reasoning", "id": item_id, "summary": [], "content": content, "status": "completed"}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def envelope(body: Mapping[str, Any], response_id: str, model: str, created: int) -> dict[str, Any]:
    """The Response object's fields that echo the request (the SDK requires them)."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "model": model,
        "status": "in_progress",
        "output": [],
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "metadata": body.get("metadata") or {},
        "max_output_tokens": body.get("max_output_tokens"),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "text": body.get("text") or {"format": {"type": "text"}},
        "previous_response_id": None,
        "store": False,  # nothing is kept upstream: a chat upstream has no stored responses
        "usage": None,
    }


def finished(response: dict[str, Any], finish: str | None) -> dict[str, Any]:
    """Set status from the chat finish reason: ``length`` is Responses' incomplete answer."""
    if finish == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    elif finish == "content_filter":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "content_filter"}
    else:
        response["status"] = "completed"
    return response


def answer(chat: Mapping[str, Any], body: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """A chat.completion answer -> a Response object (``openai.types.responses.Response``); ``model`` names it."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    created = chat.get("created") or int(time.time())
    response = envelope(body, "resp_" + str(chat.get("id") or new_id("")), model or chat.get("model") or "", created)
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")  # vLLM, llama.cpp
    if reasoning:
        output.append(reasoning_item(reasoning, new_id("rs_")))
    if message.get("content"):
        output.append(message_item(message["content"], new_id("msg_")))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        call_id = call.get("id") or new_id("call_")
        output.append(call_item(new_id("fc_"), call_id, fn.get("name", ""), fn.get("arguments") or "{}"))
    response["output"] = output
    response["usage"] = usage(chat.get("usage"))
    return finished(response, choice.get("finish_reason"))
