"""One parse of the request body and the few checks that keep bad input away from upstreams.

Deliberately not a schema validation of the whole body: the upstream validates its own fields; we
check only what we rely on, and pass every other field through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from modelmeter.gateway.errors import APIError

CALL_TYPES = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completion",
    "/v1/embeddings": "embedding",
}


def parse_body(raw: bytes, model_of: Callable[[dict[str, Any]], str | None] | None = None) -> dict[str, Any]:
    """The request's JSON object; without a ``model``, ``model_of(body)`` may name one (the
    deployment of a Responses chain), which is then written into it."""
    if not raw:
        raise APIError(400, "The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise APIError(400, f"The request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.", code="invalid_json")
    model = body.get("model")
    if model is None and model_of is not None:
        model = model_of(body)
        if model is not None:
            body["model"] = model
    if model is None:
        raise APIError(400, "you must provide a model parameter", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise APIError(400, "'model' must be a non-empty string", param="model", code="invalid_type")
    return body


def check_stream(body: dict[str, Any]) -> None:
    """Pass-through APIs (Messages, Responses): their upstream validates the rest."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise APIError(400, "'stream' must be a boolean", param="stream", code="invalid_type")


def check_fields(body: dict[str, Any], call_type: str) -> None:
    """The fields every upstream needs, with OpenAI's messages for them."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise APIError(400, "'stream' must be a boolean", param="stream", code="invalid_type")
    if call_type == "chat":
        messages = body.get("messages")
        if messages is None:
            raise APIError(
                400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
            )
        if not isinstance(messages, list) or not messages:
            raise APIError(400, "'messages' must be a non-empty array", param="messages", code="invalid_type")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise APIError(
                    400, f"messages[{i}] must be an object with a 'role'", param=f"messages[{i}]", code="invalid_type"
                )
    elif call_type == "completion":
        prompt = body.get("prompt")
        if prompt is None:
            raise APIError(
                400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
            )
        if not isinstance(prompt, str | list):
            raise APIError(400, "'prompt' must be a string or an array", param="prompt", code="invalid_type")
    else:
        inp = body.get("input")
        if inp is None:
            raise APIError(
                400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
            )
        if not isinstance(inp, str | list) or inp == [] or inp == "":
            raise APIError(400, "'input' must be a non-empty string or array", param="input", code="invalid_type")
        if stream:
            raise APIError(400, "embeddings cannot be streamed", param="stream", code="invalid_value")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise APIError(400, f"'{name}' must be a positive integer", param=name, code="invalid_value")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise APIError(400, "'stream_options' must be an object", param="stream_options", code="invalid_type")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise APIError(400, "'metadata' must be an object", param="metadata", code="invalid_type")
