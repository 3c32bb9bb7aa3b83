"""Message content in the GenAI semconv shape (``gen_ai.input.messages`` / ``gen_ai.output.messages``:
JSON arrays of ``{"role", "parts": [{"type": "text", "content"}…]}``). Only with ``capture_content``:
prompts and answers may hold personal data, so nothing is sent unless asked for."""

from __future__ import annotations

from typing import Any

import orjson


def _parts(content: Any) -> list[dict[str, Any]]:
    """A message's content (a string, or a list of typed blocks) as semconv parts."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not isinstance(content, list):
        return []
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, str):
            parts.append({"type": "text", "content": block})
        elif isinstance(block, dict):
            text = block.get("text")
            if isinstance(text, str) and str(block.get("type", "text")).endswith("text"):
                parts.append({"type": "text", "content": text})  # text, input_text, output_text
            elif block.get("type") in ("tool_use", "function_call"):
                parts.append(
                    {
                        "type": "tool_call",
                        "id": block.get("id") or block.get("call_id"),
                        "name": block.get("name"),
                        "arguments": block.get("input") or block.get("arguments"),
                    }
                )
            elif block.get("type") in ("tool_result", "function_call_output"):
                parts.append(
                    {
                        "type": "tool_call_response",
                        "id": block.get("tool_use_id") or block.get("call_id"),
                        "response": block.get("content") or block.get("output"),
                    }
                )
            else:
                parts.append({"type": str(block.get("type", "unknown"))})  # images, audio: named, not sent
    return parts


def _dump(messages: list[dict[str, Any]]) -> str:
    return orjson.dumps(messages, default=str).decode()


def input_messages(call_type: str, body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    out: list[dict[str, Any]] = []
    if call_type == "messages" and body.get("system") is not None:
        out.append({"role": "system", "parts": _parts(body["system"])})
    if call_type == "responses" and isinstance(body.get("instructions"), str):
        out.append({"role": "system", "parts": _parts(body["instructions"])})
    items = body.get("messages") if call_type in ("chat", "messages") else body.get("input", body.get("prompt"))
    if isinstance(items, str):
        return _dump([*out, {"role": "user", "parts": _parts(items)}])
    if not isinstance(items, list):
        return _dump(out) if out else None
    for item in items:
        if isinstance(item, dict) and "role" in item:
            out.append({"role": str(item["role"]), "parts": _parts(item.get("content"))})
        elif isinstance(item, dict):  # a responses input item without a role (a tool output)
            out.append({"role": "tool", "parts": _parts([item])})
        else:
            out.append({"role": "user", "parts": _parts([item] if isinstance(item, str) else [])})
    return _dump(out)


def output_messages(call_type: str, body: Any) -> str | None:
    if not isinstance(body, dict) or "error" in body or call_type == "embedding":
        return None
    if isinstance(body.get("choices"), list):  # chat completions and completions
        out = []
        for choice in body["choices"]:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            message = message if isinstance(message, dict) else {}
            content = message.get("content", choice.get("text"))
            out.append({"role": "assistant", "parts": _parts(content), "finish_reason": choice.get("finish_reason")})
        return _dump(out)
    if call_type == "messages":
        return _dump(
            [{"role": "assistant", "parts": _parts(body.get("content")), "finish_reason": body.get("stop_reason")}]
        )
    if call_type == "responses" and isinstance(body.get("output"), list):
        parts: list[dict[str, Any]] = []
        for item in body["output"]:
            if isinstance(item, dict):
                parts += _parts(item.get("content")) if item.get("type") == "message" else _parts([item])
        return _dump([{"role": "assistant", "parts": parts, "finish_reason": body.get("status")}])
    return None
