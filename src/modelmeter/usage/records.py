"""Reading records: keyset pages of the request log, one whole record, rows newer than a cursor."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from modelmeter.storage import request_ids
from modelmeter.storage.database import Database
from modelmeter.storage.retention import BODIES_PRUNED
from modelmeter.storage.row import RECORD_COLUMNS
from modelmeter.units import PICO, iso
from modelmeter.usage.window import Window

MAX_LIMIT = 200
_COLS = ", ".join(f"r.{c}" for c in RECORD_COLUMNS)
_BOOL = ("stream", "cache_hit", "usage_estimated")


class CursorError(ValueError):
    pass


def encode_cursor(start_us: int, rid: str) -> str:
    return base64.urlsafe_b64encode(f"{start_us}:{rid}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        start, rid = raw.split(":", 1)
        if not -(2**62) < int(start) < 2**62 or "\x00" in rid:  # no stored time or id is like that
            raise ValueError(start)
        return int(start), rid
    except (ValueError, UnicodeDecodeError):
        raise CursorError("'cursor' is not one this API gave out") from None


def row_to_api(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row in the API's shape: ISO times, USD, booleans, parsed JSON."""
    out = {
        k: row[k]
        for k in RECORD_COLUMNS
        if k not in ("start_us", "end_us", "spend_pusd", "cost_breakdown", "metadata", "tags", "bodies")
    }
    for key in _BOOL:
        out[key] = bool(row[key])
    out["start_time"] = iso(row["start_us"])
    out["end_time"] = iso(row["end_us"])
    out["spend"] = row["spend_pusd"] / PICO
    out["cost_breakdown"] = orjson.loads(row["cost_breakdown"])
    out["metadata"] = orjson.loads(row["metadata"]) if row["metadata"] else {}
    out["tags"] = orjson.loads(row["tags"]) if row["tags"] else []
    out["bodies_stored"] = row["bodies"] == 1
    out["attempts"] = orjson.loads(row["attempts"]) if row["attempts"] else None  # routed calls only
    return out


def _filters(
    db: Database,
    deployment: str,
    window: Window,
    status: str | None,
    tag: str | None,
    search: str | None,
    key_alias: str | None = None,
    session: str | None = None,
    call_type: str | None = None,
    end_user: str | None = None,
) -> tuple[str, str, dict[str, Any], str]:
    """FROM, WHERE, parameters, and the alias whose (start_us, id) the keyset uses.

    A tag filter pages on ``record_tags``' own (deployment, tag, start_us, id) key."""
    params: dict[str, Any] = {"dep": deployment, "ws": window.start_us, "we": window.end_us}
    source, key, start = "records r", "r", "r.start_us"
    if tag:
        source, key, start = "record_tags t JOIN records r ON r.id = t.id", "t", "t.start_us"
        where = ["t.deployment = :dep", "t.tag = :tag"]
        params["tag"] = tag
    elif search:
        # The few ids found drive the query by primary key. Written as expressions, deployment and
        # time cannot pull the planner onto the page index instead, which scans the whole window to
        # find them (SQLite did: 57 ms at 1 M records, 0.4 ms this way).
        where = ["r.deployment || '' = :dep"]
        start = "r.start_us + 0"
    else:
        where = ["r.deployment = :dep"]
    where += [f"{start} >= :ws", f"{start} < :we"]
    if status:
        where.append("r.status = :status")
        params["status"] = status
    if search:  # a record id, or an upstream request id (looked up hour by hour, not by a scan)
        ids = [search, *request_ids.find(db, deployment, search, window.start_us, window.end_us)]
        where.append(f"r.id IN ({', '.join(f':s{i}' for i in range(len(ids)))})")
        params |= {f"s{i}": v for i, v in enumerate(ids)}
    if key_alias:  # pages on records_page_key (deployment, key_alias, start_us, id)
        where.append("r.key_alias = :key_alias")
        params["key_alias"] = key_alias
    if session:  # pages on records_page_session (deployment, session_id, start_us, id)
        where.append("r.session_id = :session")
        params["session"] = session
    if call_type:  # pages on records_page_call_type (deployment, call_type, start_us, id)
        where.append("r.call_type = :call_type")
        params["call_type"] = call_type
    if end_user:  # the request's "user", in the metadata: no index, the page reads rows until it has its own
        user = (
            "json_extract(r.metadata, '$.user')" if db.dialect == "sqlite" else "(CAST(r.metadata AS jsonb) ->> 'user')"
        )
        where.append(f"r.metadata LIKE '%\"user\"%' AND {user} = :end_user")
        params["end_user"] = end_user
    return source, " AND ".join(where), params, key


def page(
    db: Database,
    deployment: str,
    window: Window,
    *,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    search: str | None = None,
    key_alias: str | None = None,
    session: str | None = None,
    call_type: str | None = None,
    end_user: str | None = None,
) -> dict[str, Any]:
    """Newest first by (start_time, id), one index range scan; never counts the window."""
    source, where, params, key = _filters(
        db, deployment, window, status, tag, search, key_alias, session, call_type, end_user
    )
    if cursor:
        c_start, c_id = decode_cursor(cursor)
        where += f" AND ({key}.start_us < :cs OR ({key}.start_us = :cs AND {key}.id < :cid))"
        params |= {"cs": c_start, "cid": c_id}
    params["lim"] = limit + 1
    sql = f"SELECT {_COLS} FROM {source} WHERE {where} ORDER BY {key}.start_us DESC, {key}.id DESC LIMIT :lim"
    rows = [dict(zip(RECORD_COLUMNS, r, strict=True)) for r in db.fetchall(sql, params)]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["start_us"], rows[-1]["id"]) if more and rows else None
    return {"data": [row_to_api(r) for r in rows], "next_cursor": next_cursor}


def newer(
    db: Database,
    deployment: str,
    window: Window,
    after: str,
    *,
    limit: int = 200,
    status: str | None = None,
    tag: str | None = None,
    key_alias: str | None = None,
    session: str | None = None,
    call_type: str | None = None,
    end_user: str | None = None,
) -> list[dict[str, Any]]:
    """Rows newer than a cursor (what Live fetches), newest first."""
    source, where, params, key = _filters(
        db, deployment, window, status, tag, None, key_alias, session, call_type, end_user
    )
    a_start, a_id = decode_cursor(after)
    where += f" AND ({key}.start_us > :as_ OR ({key}.start_us = :as_ AND {key}.id > :aid))"
    params |= {"as_": a_start, "aid": a_id, "lim": limit}
    sql = f"SELECT {_COLS} FROM {source} WHERE {where} ORDER BY {key}.start_us ASC, {key}.id ASC LIMIT :lim"
    rows = [dict(zip(RECORD_COLUMNS, r, strict=True)) for r in db.fetchall(sql, params)]
    return [row_to_api(r) for r in reversed(rows)]


def export(
    db: Database,
    deployment: str,
    window: Window,
    *,
    status: str | None = None,
    tag: str | None = None,
    key_alias: str | None = None,
    session: str | None = None,
    call_type: str | None = None,
    end_user: str | None = None,
    batch: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Every row of the filtered log, newest first, read a keyset page at a time."""
    cursor = None
    filters = {
        "status": status,
        "tag": tag,
        "key_alias": key_alias,
        "session": session,
        "call_type": call_type,
        "end_user": end_user,
    }
    while True:
        result = page(db, deployment, window, limit=batch, cursor=cursor, **filters)
        yield from result["data"]
        cursor = result["next_cursor"]
        if cursor is None:
            return


def one(db: Database, rid: str) -> dict[str, Any] | None:
    row = db.fetchone(
        f"SELECT {_COLS}, b.request, b.response, b.upstream_request, b.upstream_response FROM records r "
        "LEFT JOIN record_bodies b ON b.id = r.id WHERE r.id = :id",
        {"id": rid},
    )
    if row is None:
        return None
    record = row_to_api(dict(zip(RECORD_COLUMNS, row[: len(RECORD_COLUMNS)], strict=True)))
    request, response, sent, answered = row[len(RECORD_COLUMNS) :]
    record["request"] = orjson.loads(request) if request else None
    record["response"] = orjson.loads(response) if response else None
    if sent or answered:  # a translated call: what went upstream, in the upstream's API
        record["upstream_request"] = orjson.loads(sent) if sent else None
        record["upstream_response"] = orjson.loads(answered) if answered else None
    if row[RECORD_COLUMNS.index("bodies")] == BODIES_PRUNED:
        record["bodies_note"] = (
            "The request and response bodies were removed by the retention policy (retention.bodies_days)."
        )
    elif not record["bodies_stored"]:
        record["bodies_note"] = (
            "Bodies were not stored for this request: body storage is off "
            "for this deployment or server (store_bodies = false)."
        )
    return record


def cursor_of(row: dict[str, Any]) -> str:
    """The keyset position of an API row (for Live: fetch what is newer than this)."""
    from datetime import datetime

    start = datetime.fromisoformat(row["start_time"].replace("Z", "+00:00"))
    us = int(start.timestamp()) * 1_000_000 + start.microsecond
    return encode_cursor(us, row["id"])
