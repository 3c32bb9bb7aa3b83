"""The server's records of a run, read in-process (the run holds no admin key to read /api):
the same summary and log queries ``/api/deployments/{name}/usage`` and ``/requests`` answer with."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from modelmeter.bench.runner import ReadRecords
from modelmeter.storage.database import Database
from modelmeter.units import iso
from modelmeter.usage import records as records_q
from modelmeter.usage import summary as summary_q
from modelmeter.usage.window import parse_window

MAX_RECORDS = 50_000


def _read(db: Database, model: str, tag: str, started: float, expected: int, wait: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    while True:  # records are written asynchronously: wait until the run's are all stored
        win = parse_window(None, iso(int((started - 60) * 1e6)), iso(int((time.time() + 60) * 1e6)))
        summary = summary_q.summary(db, model, win, tag)
        if summary["requests"] >= expected or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    records: list[dict[str, Any]] = []
    cursor: str | None = None
    while summary["requests"] <= MAX_RECORDS:
        page = records_q.page(db, model, win, limit=200, cursor=cursor, tag=tag)
        records.extend(page["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return {"summary": summary, "records": records}


def reader(db: Database, wait: float = 5.0) -> ReadRecords:
    async def read(model: str, tag: str, started: float, expected: int) -> dict[str, Any]:
        return await asyncio.to_thread(_read, db, model, tag, started, expected, wait)

    return read
