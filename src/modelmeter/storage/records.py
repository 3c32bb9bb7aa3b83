"""Writing finished record rows: the narrow log row, its bodies and its tags, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from modelmeter.storage.database import Database

RECORD_COLUMNS = (
    "id", "request_id", "deployment", "model", "model_id", "provider", "call_type", "api_base",
    "client_ip", "status", "http_status", "error", "stream", "start_us", "end_us", "latency_ms",
    "ttft_ms", "overhead_ms", "retries", "cache_hit", "prompt_tokens", "completion_tokens",
    "total_tokens", "cached_tokens", "reasoning_tokens", "usage_estimated", "spend_pusd",
    "cost_breakdown", "price_source", "metadata", "tags", "bodies",
)
_INSERT_RECORD = (f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}) VALUES "
                  f"({', '.join(':' + c for c in RECORD_COLUMNS)})")
_INSERT_BODY = "INSERT INTO record_bodies (id, request, response) VALUES (:id, :request, :response)"
_INSERT_TAG = ("INSERT INTO record_tags (deployment, tag, start_us, id) "
               "VALUES (:deployment, :tag, :start_us, :id)")


def insert_rows(db: Database, rows: Sequence[dict[str, Any]]) -> None:
    """Insert a batch of finished rows atomically; re-inserting an id already stored is a no-op."""
    bodies = [r for r in rows if r["request"] is not None or r["response"] is not None]
    tags = [
        {"deployment": r["deployment"], "tag": t, "start_us": r["start_us"], "id": r["id"]}
        for r in rows if r["tags"] for t in dict.fromkeys(orjson.loads(r["tags"]))
    ]
    suffix = " ON CONFLICT DO NOTHING"
    with db.transaction() as tx:
        db.executemany(tx, _INSERT_RECORD + suffix, rows)
        if bodies:
            db.executemany(tx, _INSERT_BODY + suffix, bodies)
        if tags:
            db.executemany(tx, _INSERT_TAG + suffix, tags)
