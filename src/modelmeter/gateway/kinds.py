"""Which endpoint a deployment serves: a chat model's call sent to /v1/embeddings (or the mirror)
is answered with a clear 400 here, before any upstream is asked (embedding servers answer such
calls with a bare 404 route error; llama.cpp with a 501 naming a flag we have no)."""

from __future__ import annotations

from modelmeter.config import Deployment
from modelmeter.gateway.errors import APIError

_PATHS = {"chat": "/v1/chat/completions", "embedding": "/v1/embeddings"}
_NAMES = {"chat": "a chat model", "embedding": "an embeddings model"}


def kind_of(dep: Deployment) -> str | None:
    """The deployment's kind where known: its ``kind``, else an embedded model's own kind."""
    if dep.kind is not None:
        return dep.kind
    return dep.local_kind if dep.is_local else None


def check_kind(dep: Deployment, call_type: str) -> None:
    kind = kind_of(dep)
    if kind is None:
        return
    wanted = "embedding" if call_type == "embedding" else "chat"
    if kind != wanted:
        raise APIError(
            400, f"'{dep.name}' is {_NAMES[kind]}; use {_PATHS[kind]}.", param="model", code="wrong_model_kind"
        )
