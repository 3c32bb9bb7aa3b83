"""A one-tool agent loop for the fake Responses upstream (a model naming ``tool-call``).

First turn (the request offers a function tool and carries no tool result): the answer is one
``function_call`` item calling the first function tool, each required string argument set to
``ARGUMENT``. Next turn (the input holds a ``function_call_output``): a message quoting that output,
``"The tool said: <output>"``, so a test sees the result went round the loop. Usage is the same as
for any answer (tests/fakes/doors.py), so the ledger check stays exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

FLAG = "tool-call"
ARGUMENT = "Paris"
ANSWER_PREFIX = "The tool said: "


def wanted(body: dict[str, Any]) -> bool:
    model = body.get("model")
    return isinstance(model, str) and FLAG in model


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
    """The ``function_call`` output item for the first function tool, or None without one."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    if not tools:
        return None
    tool = tools[0]
    params = tool.get("parameters") or {}
    props = params.get("properties") or {}
    args = {name: ARGUMENT for name in params.get("required") or [] if props.get(name, {}).get("type") == "string"}
    return {
        "id": f"fc_{rid}",
        "type": "function_call",
        "status": "completed",
        "call_id": f"call_{rid}",
        "name": tool["name"],
        "arguments": orjson.dumps(args).decode(),
    }


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
