"""CORS for /v1, so a browser app on an allowed origin can call the gateway: off unless the config
lists origins (``[server] cors_origins``). Starlette's middleware answers preflights and adds the
headers to answers for allowed origins only; others get none (and their preflights a 400)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware

from modelmeter.asgi import ASGIApp

# What a browser client may read of an answer: the SDKs read the request id and rate-limit hints.
EXPOSED = [
    "x-request-id",
    "x-modelmeter-cache",
    "retry-after",
    "openai-processing-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
]


def with_cors(app: ASGIApp, origins: Sequence[str]) -> ASGIApp:
    if not origins:
        return app  # off: not a single extra check on the hot path
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=EXPOSED,
        max_age=600,
    )
