"""Front doors: the client-facing APIs the gateway serves (Chat Completions, Anthropic Messages,
OpenAI Responses), each described once by a ``FrontDoor`` (apis/base.py)."""
