"""Chat client -> OpenAI Responses upstream: the request, and the Response object as a chat.completion.

Some OpenAI models are served on /v1/responses only. Responses takes the conversation as items:
messages (system and developer ones too), ``function_call`` for each of the assistant's tool calls
and ``function_call_output`` for each tool message. Nothing is left stored upstream unless the
client asked (``store`` is false by default here, where Responses' own default is true), and
function tools keep chat's non-strict default (Responses' default is strict, which rejects most
hand-written schemas). Settings Responses has no way to honour (``stop``, ``n``, penalties,
``logit_bias``, audio) are refused with a 400 naming them rather than dropped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from modelmeter.apis.translate.wire import TranslationError, new_id, text_of

ROLES = ("system", "developer", "user", "assistant")
REFUSED = {  # chat fields Responses cannot honour: the client hears so rather than getting another answer
    "stop": "stop sequences",
    "logit_bias": "logit_bias",
    "audio": "audio output",
    "prediction": "predicted outputs",
}


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    for key, what in REFUSED.items():
        if body.get(key):
            raise TranslationError(f"{what} cannot be sent to this model (it speaks the Responses API)", key)
    if (body.get("n") or 1) != 1:
        raise TranslationError("n other than 1 cannot be sent to this model", "n")
    for key in ("frequency_penalty", "presence_penalty"):
        if body.get(key):  # 0 / null are the default: harmless
            raise TranslationError(f"{key} cannot be sent to this model (it speaks the Responses API)", key)
    if body.get("logprobs"):
        raise TranslationError("logprobs cannot be sent to this model (it speaks the Responses API)", "logprobs")


def _part(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": part.get("text", "")}
    if kind == "image_url":
        image = part.get("image_url") or {}
        url = image if isinstance(image, str) else image.get("url", "")
        detail = "auto" if isinstance(image, str) else image.get("detail") or "auto"
        return {"type": "input_image", "image_url": url, "detail": detail}
    if kind == "file":
        given = part.get("file") or {}
        return {"type": "input_file", **{k: given[k] for k in ("file_id", "file_data", "filename") if given.get(k)}}
    raise TranslationError(f"{where}: content of type {kind!r} cannot be sent to this model", where)


def _content(content: Any, where: str) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    parts = [_part(p, f"{where}.{j}") for j, p in enumerate(content)]
    if all(p["type"] == "input_text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _items(messages: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        role = message.get("role")
        if role in ("tool", "function"):
            if not message.get("tool_call_id"):
                raise TranslationError(f"{where}: a tool result needs its tool_call_id", f"{where}.tool_call_id")
            output = text_of(message.get("content"))
            items.append({"type": "function_call_output", "call_id": message["tool_call_id"], "output": output})
            continue
        if role not in ROLES:
            raise TranslationError(f"{where}.role {role!r} is not a chat role", f"{where}.role")
        if role == "assistant":
            text = text_of(message.get("content")) or (message.get("refusal") or "")
            if text:
                items.append({"type": "message", "role": "assistant", "content": text})
            for k, call in enumerate(message.get("tool_calls") or []):
                fn = call.get("function") or {}
                if call.get("type", "function") != "function":
                    raise TranslationError(f"{where}.tool_calls.{k}: only function calls", f"{where}.tool_calls.{k}")
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.get("id") or new_id("call_"),
                        "name": fn.get("name", ""),
                        "arguments": fn.get("arguments") or "{}",
                    }
                )
            continue
        content = _content(message.get("content"), f"{where}.content")
        if role in ("system", "developer") and not isinstance(content, str):
            raise TranslationError(f"{where}: a {role} message holds text only", f"{where}.content")
        items.append({"type": "message", "role": role, "content": content})
    return items


def _tools(tools: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if tool.get("type") != "function":
            raise TranslationError(f"tools.{i}: only function tools can be sent to this model", f"tools.{i}.type")
        fn = tool.get("function") or {}
        entry: dict[str, Any] = {"type": "function", "name": fn.get("name", ""), "strict": bool(fn.get("strict"))}
        if fn.get("description"):
            entry["description"] = fn["description"]
        entry["parameters"] = fn.get("parameters") or {"type": "object", "properties": {}}
        out.append(entry)
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice  # auto, none, required: the same words
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return {"type": "function", "name": (choice.get("function") or {}).get("name", "")}
    if isinstance(choice, Mapping) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        tools = [
            {"type": "function", "name": (t.get("function") or {}).get("name", "")} for t in allowed.get("tools") or []
        ]
        return {"type": "allowed_tools", "mode": allowed.get("mode", "auto"), "tools": tools}
    raise TranslationError("tool_choice cannot be sent to this model", "tool_choice")


def _text_format(fmt: Mapping[str, Any]) -> dict[str, Any]:
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = fmt.get("json_schema") or {}
        return {
            "type": "json_schema",
            **{k: schema[k] for k in ("name", "schema", "strict", "description") if k in schema},
        }
    if kind in ("json_object", "text"):
        return {"type": kind}
    raise TranslationError(f"response_format of type {kind!r} cannot be sent to this model", "response_format.type")


def request(body: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """A chat.completions request body -> a Responses request body (``model`` overrides the client's)."""
    _refuse_unsupported(body)
    out: dict[str, Any] = {"model": model or body.get("model"), "input": _items(list(body.get("messages") or []))}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        out["max_output_tokens"] = limit
    for key in ("temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier", "prompt_cache_key"):
        if body.get(key) is not None:
            out[key] = body[key]
    for key in ("metadata", "service_tier"):
        if body.get(key):
            out[key] = body[key]
    out["store"] = body.get("store") is True  # no state left upstream unless the client asked for it
    tools = _tools(list(body.get("tools") or []))
    if tools:
        out["tools"] = tools
        if body.get("tool_choice") is not None:
            out["tool_choice"] = _tool_choice(body["tool_choice"])
    text: dict[str, Any] = {}
    if isinstance(body.get("response_format"), Mapping):
        text["format"] = _text_format(body["response_format"])
    if body.get("verbosity"):
        text["verbosity"] = body["verbosity"]
    if text:
        out["text"] = text
    if body.get("reasoning_effort"):
        out["reasoning"] = {"effort": body["reasoning_effort"]}
    if body.get("stream"):
        out["stream"] = True  # Responses always ends its stream with the usage: no stream_options needed
    return out


def usage(responses_usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """Responses usage -> chat usage: both count cached tokens in the input and reasoning in the output."""
    u = responses_usage or {}
    prompt, completion = u.get("input_tokens") or 0, u.get("output_tokens") or 0
    details = u.get("input_tokens_details") or {}
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": u.get("total_tokens") or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": details.get("cached_tokens") or 0},
        "completion_tokens_details": {
            "reasoning_tokens": (u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
        },
    }


def finish_reason(response: Mapping[str, Any], called: bool) -> str:
    """From the Response's status: a length cut is ``length`` even after a call (the call may be cut)."""
    reason = (response.get("incomplete_details") or {}).get("reason")
    if response.get("status") == "incomplete":
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if called else "stop"


def reasoning_text(item: Mapping[str, Any]) -> str:
    """A reasoning item's readable text: its summary, else its raw reasoning (open-weight models)."""
    parts = item.get("summary") or item.get("content") or []
    return "".join(p.get("text", "") for p in parts if isinstance(p, Mapping))


def answer(response: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """A Response object -> a chat.completion answer (``openai.types.chat.ChatCompletion``); ``model`` names it."""
    texts: list[str] = []
    refusals: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in response.get("output") or []:
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    texts.append(part.get("text", ""))
                elif part.get("type") == "refusal":
                    refusals.append(part.get("refusal", ""))
        elif kind == "function_call":
            fn = {"name": item.get("name", ""), "arguments": item.get("arguments") or "{}"}
            calls.append({"id": item.get("call_id") or new_id("call_"), "type": "function", "function": fn})
        elif kind == "reasoning":
            thinking.append(reasoning_text(item))
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": "".join(refusals) if refusals else None,
    }
    if calls:
        reply["tool_calls"] = calls
    if any(thinking):  # the field vLLM and llama.cpp use, as the other translators do
        reply["reasoning_content"] = "".join(thinking)
    finish = finish_reason(response, bool(calls))
    return {
        "id": "chatcmpl-" + str(response.get("id") or new_id("")),
        "object": "chat.completion",
        "created": response.get("created_at") or int(time.time()),
        "model": model or response.get("model") or "",
        "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
        "usage": usage(response.get("usage")),
    }
