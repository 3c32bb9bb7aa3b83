"""Which front door a path is, and which API a deployment's upstream speaks."""

from __future__ import annotations

from modelmeter.apis.base import FrontDoor
from modelmeter.apis.chat import CHAT, COMPLETION, EMBEDDING
from modelmeter.apis.messages import COUNT_TOKENS, MESSAGES
from modelmeter.apis.responses import RESPONSES
from modelmeter.config import Deployment

DOORS: dict[str, FrontDoor] = {
    "/v1/chat/completions": CHAT,
    "/v1/completions": COMPLETION,
    "/v1/embeddings": EMBEDDING,
    "/v1/messages": MESSAGES,
    "/v1/messages/count_tokens": COUNT_TOKENS,
    "/v1/responses": RESPONSES,
}


def upstream_api(dep: Deployment) -> str:
    """The deployment's ``api``; else Anthropic's own API for provider "anthropic"; else chat."""
    if dep.api is not None:
        return dep.api
    return "messages" if dep.provider == "anthropic" else "chat"
