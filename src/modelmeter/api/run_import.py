"""``POST /api/runs/import``: a run file written by ``modelmeter runs export`` (by this server or
another), stored so the Runs page lists and compares it. The body is the file as it is: a file
that is not JSON or of another format version is refused with a 400 that says so, one whose id is
taken with a 409 as ``POST /api/runs`` does (with ``?new_id=true`` a taken id gives a fresh one
instead; nothing is ever overwritten)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from modelmeter.api.errors import api_error
from modelmeter.api.state import AppState
from modelmeter.runs import runfile
from modelmeter.runs.manager import with_status
from modelmeter.storage import runs as runs_db
from modelmeter.storage.database import Database

router = APIRouter(prefix="/api", tags=["runs"])
_TRIES = 5  # fresh ids are random: a second clash is all but impossible


def store(db: Database, raw: bytes, new_id: bool) -> dict[str, Any]:
    """Check and insert the run; when its id is taken and ``new_id``, under a fresh one (its params
    then say which id it had)."""
    run = runfile.parse(raw)
    original = run["id"]
    for attempt in range(1 + (_TRIES if new_id else 0)):
        row: dict[str, Any] = dict(run)
        if attempt:
            row["id"] = runfile.new_id(original)
            row["params"] = {**run["params"], "imported_from": original}
        try:
            return with_status(runs_db.insert_run(db, row))
        except runs_db.RunExists:
            continue
    raise runfile.RunFileError(
        f"a run with id {original!r} already exists here; import it under a new id "
        "(?new_id=true, `modelmeter runs import --new-id`, or the page's Import as a copy)",
        "run_exists",
    )


_BODY = {  # read raw (a malformed file is a 400 that says so, not a validation error): described here
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "The file as `modelmeter runs export` writes it: format, format_version (1), "
                "id, kind, deployment, created_us, params, report",
            }
        }
    },
}


@router.post(
    "/runs/import",
    status_code=201,
    summary="Store a run from a `modelmeter runs export` file",
    openapi_extra={"requestBody": _BODY},
)
async def import_run(
    request: Request,
    new_id: Annotated[bool, Query(description="If its id is taken here, store it under a fresh one")] = False,
) -> dict[str, Any]:
    state: AppState = request.app.state.mm
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # stop reading past the limit rather than hold any size
        size += len(chunk)
        if size > runfile.MAX_BYTES:
            raise api_error(413, f"the file is larger than {runfile.MAX_BYTES >> 20} MB: not a run export", "file")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:  # parsing a large file and the insert both off the event loop
        return await asyncio.to_thread(store, state.db, raw, new_id)
    except runfile.RunFileError as exc:
        raise api_error(409 if exc.code == "run_exists" else 400, str(exc), "file", exc.code) from None
