"""Remembered benchmark and evaluation runs: ``POST /api/runs``, ``GET /api/runs``,
``GET /api/runs/{id}`` (what ``modelmeter bench`` / ``eval`` store, and ``bench list`` /
``bench compare`` read). Database work runs in FastAPI's thread pool (plain ``def`` handlers)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from modelmeter.api.errors import api_error
from modelmeter.api.state import AppState
from modelmeter.storage import runs as runs_db

router = APIRouter(prefix="/api", tags=["runs"])
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class RunIn(BaseModel):
    """A run as ``modelmeter bench`` and ``modelmeter eval`` send it."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=RUN_ID_PATTERN, description="The run id, as in the tag bench:ID / eval:ID")
    kind: Literal["bench", "eval"]
    deployment: str | None = Field(None, max_length=200, description="The model or deployment run")
    created_us: int | None = Field(None, ge=0, le=2**63 - 1, description="Microseconds since the epoch (default: now)")
    params: dict[str, Any] = Field(default_factory=dict, description="The run's parameters")
    report: dict[str, Any] | None = Field(None, description="The run's report (its JSON output)")


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.mm
    return state


@router.post("/runs", status_code=201, summary="Store a benchmark or evaluation run")
def create_run(request: Request, run: RunIn) -> dict[str, Any]:
    data = run.model_dump()
    for part in ("params", "report"):
        try:
            orjson.dumps(data[part])
        except orjson.JSONEncodeError as exc:
            raise api_error(400, f"'{part}' cannot be stored as JSON: {exc}", part) from None
    if data["created_us"] is None:
        data["created_us"] = int(time.time() * 1e6)
    try:
        return runs_db.insert_run(_state(request).db, data)
    except runs_db.RunExists as exc:
        raise api_error(409, str(exc), "id", "run_exists") from None


@router.get("/runs", summary="Stored runs, newest first")
def list_runs(
    request: Request,
    kind: Annotated[Literal["bench", "eval"] | None, Query()] = None,
    deployment: Annotated[str | None, Query(description="Only runs of this model")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(description="Only runs created before this created_us (the next page)")] = None,
) -> dict[str, Any]:
    rows = runs_db.list_runs(_state(request).db, kind=kind, deployment=deployment, limit=limit, before_us=before)
    return {"data": rows, "next_before": rows[-1]["created_us"] if len(rows) == limit else None}


@router.get("/runs/{run_id}", summary="One stored run, with its parameters and report")
def get_run(request: Request, run_id: str) -> dict[str, Any]:
    run = runs_db.get_run(_state(request).db, run_id)
    if run is None:
        raise api_error(404, f"no run with id {run_id!r}", "run_id", "run_not_found")
    return run
