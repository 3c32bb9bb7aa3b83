"""A one-tool agent loop for the fake Responses and Messages upstreams (a model naming ``tool-call``).

First turn (the request offers a tool and carries no tool result): the answer calls one tool, the
one named by "use <name>" in the user's latest text, else the first. Its required string arguments
come from ``name=value`` words in that text, else are ``ARGUMENT``. Next turn (the input holds a
``function_call_output`` / the last user message a ``tool_result``): a message quoting the result,
``"The tool said: <result>"``, so a test sees the result went round the loop. Usage is the same as
for any answer (tests/fakes/doors.py), so the ledger check stays exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

FLAG = "tool-call"
ARGUMENT = "Paris"
ANSWER_PREFIX = "The tool said: "


def wanted(body: dict[str, Any]) -> bool:
    model = body.get("model")
    return isinstance(model, str) and FLAG in model


def _text(content: Any) -> str:
    """The text of a message's content: a string, or its text / input_text / tool_result parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(p.get("text") or p.get("content")) for p in content if isinstance(p, dict))
    return ""


def _pick(tools: list[dict[str, Any]], schema_key: str, text: str) -> tuple[str, dict[str, Any]]:
    """The tool to call and its arguments (see the module's doc)."""
    by_name = {t.get("name"): t for t in tools}
    named = [by_name[n] for n in re.findall(r"\buse (\w+)", text, re.I) if n in by_name]
    tool = (named or tools)[0]
    schema = tool.get(schema_key) or {}
    props = schema.get("properties") or {}
    given = dict(re.findall(r"\b(\w+)=(\S+)", text))
    required = [n for n in schema.get("required") or [] if props.get(n, {}).get("type") == "string"]
    return tool["name"], {n: given.get(n, ARGUMENT) for n in required}


# -- Responses ------------------------------------------------------------------------------
def tool_output(body: dict[str, Any]) -> str | None:
    """The newest ``function_call_output`` in the input, or None on the first turn."""
    items = body.get("input")
    if not isinstance(items, list):
        return None
    outputs = [i for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]
    if not outputs:
        return None
    out = outputs[-1].get("output")
    return out if isinstance(out, str) else orjson.dumps(out).decode()


def function_call(body: dict[str, Any], rid: str) -> dict[str, Any] | None:
    """The ``function_call`` output item, or None when no function tool is offered."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    if not tools:
        return None
    items = body.get("input")
    users = [i for i in items if isinstance(i, dict) and i.get("role") == "user"] if isinstance(items, list) else []
    text = items if isinstance(items, str) else _text(users[-1].get("content")) if users else ""
    name, args = _pick(tools, "parameters", text)
    return {
        "id": f"fc_{rid}",
        "type": "function_call",
        "status": "completed",
        "call_id": f"call_{rid}",
        "name": name,
        "arguments": orjson.dumps(args).decode(),
    }


# -- Messages -------------------------------------------------------------------------------
def _last_user(body: dict[str, Any]) -> Any:
    msgs = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    return msgs[-1].get("content") if msgs else None


def tool_result(body: dict[str, Any]) -> str | None:
    """The text of the last user message's ``tool_result`` blocks, or None on the first turn."""
    content = _last_user(body)
    results = (
        [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if isinstance(content, list)
        else []
    )
    return " ".join(_text(b.get("content")) for b in results) if results else None


def tool_use(body: dict[str, Any], mid: str) -> dict[str, Any] | None:
    """The ``tool_use`` content block, or None when no tool is offered."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
    if not tools:
        return None
    name, args = _pick(tools, "input_schema", _text(_last_user(body)))
    return {"type": "tool_use", "id": f"toolu_{mid}", "name": name, "input": args}


def call_events(ev: Callable[..., bytes], item: dict[str, Any]) -> list[bytes]:
    """The stream events of a function call (after ``response.in_progress``, before ``completed``)."""
    ids = {"item_id": item["id"], "output_index": 0}
    args = item["arguments"]
    return [
        ev("response.output_item.added", output_index=0, item={**item, "status": "in_progress", "arguments": ""}),
        ev("response.function_call_arguments.delta", **ids, delta=args),
        ev("response.function_call_arguments.done", **ids, name=item["name"], arguments=args),
        ev("response.output_item.done", output_index=0, item=item),
    ]
