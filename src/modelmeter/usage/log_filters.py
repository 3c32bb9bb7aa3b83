"""Which rows a filtered log query reads: its FROM and WHERE, as one or two keyset-ordered parts.

Every part pages on an index whose last columns are (start_us, id), so the log is one keyset order:
- no filter, a status or call type: ``records`` by (deployment[, status | call_type], start_us, id);
- a tag: ``record_tags`` (deployment, tag, start_us, id);
- a search: the few ids found, by primary key;
- an API key, session or end user: ``record_filters`` (deployment, dim, value, start_us, id) for
  the time indexed so far, and the newest records (not indexed yet, about three minutes)
  through the time index with the value as a condition (``storage.record_filters``).
A query reads the parts newest first (or oldest first, for rows newer than a cursor) until it has
its page, each part with the same cursor condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmeter.storage import record_filters, request_ids, slots
from modelmeter.storage.database import Database, in_list
from modelmeter.usage.window import Window


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    tag: str | None = None
    search: str | None = None
    key_alias: str | None = None
    session: str | None = None
    call_type: str | None = None
    end_user: str | None = None

    def indexed(self) -> tuple[str, str] | None:
        """The record_filters dimension and value that drive the query, if one does."""
        if self.tag or self.search:
            return None  # their own index drives; the others are conditions
        for dim, value in (("key", self.key_alias), ("session", self.session), ("user", self.end_user)):
            if value:
                return dim, value
        return None


@dataclass(frozen=True)
class Part:
    source: str  # FROM
    where: str
    params: dict[str, Any]
    key: str  # the alias whose (start_us, id) is the keyset


def parts(db: Database, deployment: str, window: Window, f: Filters) -> list[Part]:
    """The parts of the filtered log in [window), newest first (none if the window is empty)."""
    params: dict[str, Any] = {"dep": deployment}
    conditions = _conditions(db, f, params)
    driver = f.indexed()
    if driver is None:
        return [_plain(db, deployment, window, f, list(conditions.values()), params)]
    until = slots.read_until(db)
    out = []
    if window.end_us > until:  # the newest records, not indexed yet: the time index, filtered
        newest = ["r.deployment = :dep", "r.start_us >= :ws", "r.start_us < :we", *conditions.values()]
        out.append(
            Part(
                "records r",
                " AND ".join(newest),
                params | {"ws": max(window.start_us, until), "we": window.end_us},
                "r",
            )
        )
    if window.start_us < until:
        dim, value = driver
        # Status and call type are in record_filters too: tested there, before reading the record.
        on_f = _conditions(db, f, params, flags="f")
        indexed = ["f.deployment = :dep", "f.dim = :dim", "f.value = :fv", "f.start_us >= :ws", "f.start_us < :we"]
        # CROSS JOIN: SQLite keeps record_filters the outer loop (not a status or time index).
        out.append(
            Part(
                "record_filters f CROSS JOIN records r",
                " AND ".join(
                    [*indexed, "r.id = f.id", *_records_pruned(db), *(c for d, c in on_f.items() if d != dim)]
                ),
                params | {"dim": dim, "fv": value, "ws": window.start_us, "we": min(window.end_us, until)},
                "f",
            )
        )
    return out


def _records_pruned(db: Database) -> list[str]:
    """PostgreSQL: the window on the records too, where they are found by id (a tag's, a filter's
    or a search's): the planner then reads only the window's day partitions of them, not each
    day's (1 M records and 403 day partitions: a tag's page 103 -> 4 ms, a search 186 -> 3 ms).
    Not on SQLite, which would page on a time index instead (see the search's note)."""
    return ["r.start_us >= :ws", "r.start_us < :we"] if db.dialect == "postgresql" else []


def _conditions(db: Database, f: Filters, params: dict[str, Any], flags: str = "r") -> dict[str, str]:
    """Conditions on the record itself (``r``) for every filter but tag and search, by filter;
    status and call type on the table ``flags`` (record_filters holds them too)."""
    where = {}
    if f.status:
        where["status"] = f"{flags}.status = :status"
        params["status"] = f.status
    if f.key_alias:
        where["key"] = "r.key_alias = :key_alias"
        params["key_alias"] = f.key_alias
    if f.session:
        where["session"] = "r.session_id = :session"
        params["session"] = f.session
    if f.call_type:  # pages on records_page_call_type (deployment, call_type, start_us, id) when alone
        where["call_type"] = f"{flags}.call_type = :call_type"
        params["call_type"] = f.call_type
    if f.end_user:  # the request's "user", in the metadata
        where["user"] = (
            f"r.metadata LIKE '%\"user\"%' AND {record_filters.user_sql(db.dialect, 'r.metadata')} = :end_user"
        )
        params["end_user"] = f.end_user
    return where


def _plain(
    db: Database, deployment: str, window: Window, f: Filters, conditions: list[str], params: dict[str, Any]
) -> Part:
    params |= {"ws": window.start_us, "we": window.end_us}
    source, key, start = "records r", "r", "r.start_us"
    if f.tag:
        source, key, start = "record_tags t JOIN records r ON r.id = t.id", "t", "t.start_us"
        where = ["t.deployment = :dep", "t.tag = :tag"]
        params["tag"] = f.tag
    elif f.search:
        # The few ids found drive the query by primary key. Written as expressions, deployment and
        # time cannot pull the planner onto the page index instead, which scans the whole window to
        # find them (SQLite did: 57 ms at 1 M records, 0.4 ms this way).
        where = ["r.deployment || '' = :dep"]
        start = "r.start_us + 0"
    else:
        where = ["r.deployment = :dep"]
    where += [f"{start} >= :ws", f"{start} < :we", *conditions]
    if f.tag or f.search:
        where += _records_pruned(db)
    if f.search:  # a record id, or an upstream request id (looked up slot by slot, not by a scan)
        found = request_ids.find(db, deployment, f.search, window.start_us, window.end_us, slots.read_until(db))
        ids = [f.search, *found]
        marks, listed = in_list("s", ids)
        where.append(f"r.id IN ({marks})")
        params |= listed
    return Part(source, " AND ".join(where), params, key)
