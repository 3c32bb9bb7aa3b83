"""Reading records: keyset pages of the request log, one whole record, rows newer than a cursor."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from modelmeter.storage import partitions
from modelmeter.storage.database import Database
from modelmeter.storage.retention import BODIES_PRUNED
from modelmeter.storage.row import RECORD_COLUMNS
from modelmeter.units import PICO, iso
from modelmeter.usage.log_filters import Filters, parts
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
    """Newest first by (start_time, id), index range scans (one per part); never counts the window."""
    filters = Filters(status, tag, search, key_alias, session, call_type, end_user)
    keyset: tuple[int, str] | None = decode_cursor(cursor) if cursor else None
    rows: list[dict[str, Any]] = []
    for part in parts(db, deployment, window, filters):
        where, params = part.where, dict(part.params)
        if keyset:
            where += f" AND ({part.key}.start_us < :cs OR ({part.key}.start_us = :cs AND {part.key}.id < :cid))"
            params |= {"cs": keyset[0], "cid": keyset[1]}
        params["lim"] = limit + 1 - len(rows)
        order = f"{part.key}.start_us DESC, {part.key}.id DESC"
        sql = f"SELECT {_COLS} FROM {part.source} WHERE {where} ORDER BY {order} LIMIT :lim"
        rows += [dict(zip(RECORD_COLUMNS, r, strict=True)) for r in db.fetchall(sql, params)]
        if len(rows) > limit:
            break
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
    filters = Filters(status, tag, None, key_alias, session, call_type, end_user)
    a_start, a_id = decode_cursor(after)
    rows: list[dict[str, Any]] = []
    for part in reversed(parts(db, deployment, window, filters)):  # oldest part first
        k = part.key
        where = part.where + f" AND ({k}.start_us > :as_ OR ({k}.start_us = :as_ AND {k}.id > :aid))"
        params = part.params | {"as_": a_start, "aid": a_id, "lim": limit - len(rows)}
        sql = f"SELECT {_COLS} FROM {part.source} WHERE {where} ORDER BY {k}.start_us ASC, {k}.id ASC LIMIT :lim"
        rows += [dict(zip(RECORD_COLUMNS, r, strict=True)) for r in db.fetchall(sql, params)]
        if len(rows) >= limit:
            break
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
    query = f"SELECT {_COLS} FROM records r WHERE r.id = :id"
    row = None
    if (near := partitions.near_id_time(db, rid)) is not None:  # PostgreSQL: its day's partitions first
        row = db.fetchone(query + " AND r.start_us >= :lo AND r.start_us < :hi", {"id": rid} | near)
    if row is None:
        row = db.fetchone(query, {"id": rid})
    if row is None:
        return None
    # Apart, with the record's time: PostgreSQL reads the one partition of its day (SQLite's
    # bodies stored before migration 0020 have no start_us).
    on_day = " AND start_us = :s" if db.dialect == "postgresql" else ""
    found = db.fetchone(
        f"SELECT request, response, upstream_request, upstream_response FROM record_bodies WHERE id = :id{on_day}",
        {"id": rid, "s": row[RECORD_COLUMNS.index("start_us")]},
    )
    row = (*row, *(found or (None, None, None, None)))
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
