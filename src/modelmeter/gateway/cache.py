"""The response cache: identical non-streamed requests to a deployment with ``cache_ttl``, answered
from memory within the TTL, without an upstream call.

In-process and bounded (entries and bytes), least recently used out first. Only whole 200 answers
are kept. It has nothing to do with provider prompt caching (``cached_tokens``): a hit here is a
call the upstream never saw, recorded with ``cache_hit`` and priced at zero.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

MAX_ENTRIES = 1000
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    data: bytes  # the upstream's body, relayed as it was
    parsed: dict[str, Any]  # the same, parsed (usage, ids and the stored response body)
    expires: float  # on the cache's clock


def cache_key(deployment: str, path: str, body: dict[str, Any], key_alias: str | None = None) -> str | None:
    """sha256 of the deployment, the endpoint, the virtual key (one key's answers are not another's)
    and the parsed body with sorted keys (so the same request with its keys in another order or
    other whitespace hits too); None: not cacheable."""
    try:
        text = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None
    h = hashlib.sha256()
    h.update(deployment.encode())
    h.update(b"\0")
    h.update(path.encode())
    h.update(b"\0")
    h.update((key_alias or "").encode())
    h.update(b"\0")
    h.update(text)
    return h.hexdigest()


class ResponseCache:
    def __init__(
        self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CachedAnswer | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= self.clock():
            self._drop(key)
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: str, data: bytes, parsed: dict[str, Any], ttl: float) -> None:
        size = len(data) * 2  # the bytes and, roughly, their parsed form
        if size > self.max_bytes or self.max_entries <= 0:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = CachedAnswer(data, parsed, self.clock() + ttl)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry.data) * 2
