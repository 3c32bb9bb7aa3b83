"""OpenAI's error body, the one shape every error answer has (the gateway's /v1, /api, the admin
gate): ``{"error": {"message", "type", "param", "code"}}``. A neutral home so that no layer imports
the gateway for it."""

from __future__ import annotations

from typing import Any


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
