"""A call's metadata and tags, as stored with its record: read from the request, decoded, capped.

The metadata is the body's ``metadata`` object and ``user``; the tags come from the
``x-modelmeter-tags`` header (comma-separated) or else a ``tags`` entry of that metadata. Both are
client input stored with every record, so both are capped (OpenAI's own metadata limits: 16 keys,
keys of 64 characters, values of 512): a client cannot fill the disk through them. The request
body itself is passed upstream untouched; only what is stored is capped.
"""

from __future__ import annotations

from typing import Any

import orjson

TAGS_HEADER = b"x-modelmeter-tags"
MAX_TAGS = 20
MAX_TAG_CHARS = 200
MAX_METADATA_KEYS = 16
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 512
TRUNCATED = "metadata_truncated"  # set in the stored metadata when something was cut


def header_text(value: bytes) -> str:
    """A header's text: UTF-8 (what clients send for non-ASCII), else latin-1 (never fails)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def request_metadata(body: dict[str, Any], tags_header: bytes | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The record's metadata (capped, with the tags) and its tags; only strings are kept as tags,
    so any client input stores cleanly."""
    given = body.get("metadata")
    user = body.get("user")
    if not given and user is None and not tags_header:
        return None, []  # the common case, kept cheap: this runs on every call
    given = given if isinstance(given, dict) else {}
    meta, cut = _capped(given)
    if user is not None:
        meta["user"], cut_user = _value(user)
        cut = cut or cut_user
    raw: Any = header_text(tags_header) if tags_header else given.get("tags")
    if isinstance(raw, str):
        raw = raw.split(",")
    tags: list[str] = []
    if isinstance(raw, list):
        for tag in raw:
            tag = tag.strip()[:MAX_TAG_CHARS] if isinstance(tag, str) else ""
            if tag and tag not in tags:
                tags.append(tag)
    tags = tags[:MAX_TAGS]
    if tags:
        meta["tags"] = tags
    if cut:
        meta[TRUNCATED] = True
    return meta or None, tags


def _capped(given: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """At most MAX_METADATA_KEYS entries (``tags`` is stored apart), keys and values cut short."""
    meta: dict[str, Any] = {}
    cut = False
    for key, value in given.items():
        if key == "tags":
            continue
        if len(meta) == MAX_METADATA_KEYS:
            return meta, True
        if len(key) > MAX_KEY_CHARS:
            key, cut = key[:MAX_KEY_CHARS], True
        meta[key], cut_value = _value(value)
        cut = cut or cut_value
    return meta, cut


def _value(value: Any) -> tuple[Any, bool]:
    """A value as stored: itself when short; else the start of its text (a string)."""
    if isinstance(value, str):
        return (value, False) if len(value) <= MAX_VALUE_CHARS else (value[:MAX_VALUE_CHARS], True)
    if value is None or isinstance(value, (bool, int, float)):  # a tuple: faster than a union
        return value, False
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: the writer stores a note
        return value, False
    if len(text) <= MAX_VALUE_CHARS:
        return value, False
    return text[:MAX_VALUE_CHARS], True
