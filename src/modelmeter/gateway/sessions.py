"""The agent session a call belongs to: named by the client, or read from what agents already send.

Agent work is many calls; the log groups them by ``session_id``. Sources, first found wins:

1. ``x-modelmeter-session``: set by the caller on purpose.
2. Agent headers: ``x-claude-code-session-id`` (Claude Code; the same id as in its
   ``metadata.user_id``, and also on calls without metadata), then the Codex CLI's session id:
   ``session-id`` (v0.171, beside ``thread-id``), ``session_id`` and ``conversation_id`` (older
   versions sent both). The same UUID each turn of one session.
3. ``metadata.user_id`` in the body (Anthropic Messages): Claude Code embeds its session id, as
   ``user_<hash>_account_<uuid>_session_<uuid>`` before v2.1.78 and as a JSON string
   ``{"device_id": ..., "account_uuid": ..., "session_id": ...}`` since.
4. ``prompt_cache_key`` in the body: Codex sets it to the conversation id too (kept last, as other
   clients may use it for something else).

The value is client input stored with every record and shown in the page, so it is cleaned (no
control or invisible characters, trimmed) and capped at ``MAX_SESSION_CHARS``. This runs on the hot
path: a dict look-up or two in the common case.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelmeter.gateway.metadata import header_text

SESSION_HEADER = b"x-modelmeter-session"
_AGENT_HEADERS = (b"x-claude-code-session-id", b"session-id", b"session_id", b"conversation_id")
MAX_SESSION_CHARS = 128
_LEGACY_MARK = "_session_"  # Claude Code before v2.1.78: user_<hash>_account_<uuid>_session_<uuid>


def session_id(headers: dict[bytes, bytes], body: dict[str, Any]) -> str | None:
    """The call's session id, cleaned and capped, or None when nothing names one."""
    for name in (SESSION_HEADER, *_AGENT_HEADERS):
        value = headers.get(name)
        if value:
            found = clean(header_text(value))
            if found:
                return found
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        found = _from_claude_user_id(metadata.get("user_id"))
        if found:
            return found
    key = body.get("prompt_cache_key")
    return clean(key) if isinstance(key, str) else None


def clean(value: str) -> str | None:
    """Printable characters only (no control, format or line-break characters), trimmed, capped."""
    text = "".join(ch for ch in value[: MAX_SESSION_CHARS * 4] if ch.isprintable()).strip()
    return text[:MAX_SESSION_CHARS] or None


def _from_claude_user_id(user_id: Any) -> str | None:
    if isinstance(user_id, str) and user_id.startswith("{"):
        try:
            user_id = orjson.loads(user_id)
        except orjson.JSONDecodeError:
            return None
    if isinstance(user_id, dict):
        sid = user_id.get("session_id")
        return clean(sid) if isinstance(sid, str) else None
    if isinstance(user_id, str) and _LEGACY_MARK in user_id:
        return clean(user_id.rsplit(_LEGACY_MARK, 1)[1])
    return None
