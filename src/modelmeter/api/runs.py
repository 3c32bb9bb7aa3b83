"""Remembered benchmark and evaluation runs: ``POST /api/runs``, ``GET /api/runs``,
``GET /api/runs/{id}`` (what ``modelmeter bench`` / ``eval`` store, and ``bench list`` /
``bench compare`` read). ``POST /api/runs`` without an ``id`` starts a run on the server instead
(``runs.spec.RunStart``), stopped by ``POST /api/runs/{id}/stop``; with ``"kind": "sweep"`` and
``levels`` it starts a sweep: one bench run per concurrency (or rate) level, its curve in the
sweep's report (``runs.sweep``). Database work runs in FastAPI's
thread pool (plain ``def`` handlers)."""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelmeter.api.errors import api_error
from modelmeter.api.state import AppState
from modelmeter.runs.manager import RunManager, with_status
from modelmeter.runs.spec import RunStart
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


_manager_lock = threading.Lock()


def manager(state: AppState) -> RunManager:
    with _manager_lock:
        if state.run_manager is None:
            state.run_manager = RunManager(state.db)
        return state.run_manager


def _own_v1(request: Request) -> str:
    """This server's own /v1, by the socket the request came in on (not a proxy's name for it)."""
    host, port = request.scope.get("server") or (None, None)
    if not host or port is None:
        settings = _state(request).settings
        host, port = settings.host, settings.port
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/v1"


@router.post(
    "/runs",
    status_code=201,
    summary="Store a run (with an id), or start one on the server (without)",
    description="With an `id`: store a run as `modelmeter bench` / `eval` send it (RunIn). Without: start a "
    'run on the server (RunStart): `kind` bench, eval, or sweep. A sweep, e.g. `{"kind": "sweep", '
    '"model": "m", "sweep_by": "concurrency", "levels": [1, 2, 4], "requests": 40}`, runs one '
    "bench run per level, one after the other; `GET /api/runs/{id}` of the sweep gives its progress and then "
    "its curve: `report.points[]` with `level`, `run_id`, `status`, `request_throughput`, "
    "`output_token_throughput`, `e2e_p50_ms`, `e2e_p95_ms`, `ttft_p50_ms`, `ttft_p95_ms`. "
    "`POST /api/runs/{id}/stop` stops a sweep's current run and skips the rest.",
)
def create_run(
    request: Request, body: Annotated[dict[str, Any], Body(description="RunIn to store; RunStart to start")]
) -> dict[str, Any]:
    try:
        if "id" not in body:
            return _start(request, RunStart.model_validate(body))
        run = RunIn.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
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


def _start(request: Request, spec: RunStart) -> dict[str, Any]:
    state = _state(request)
    if state.registry.get(spec.model) is None:
        raise api_error(404, f"no deployment named {spec.model!r}", "model", "deployment_not_found")
    if state.settings.require_keys and not spec.api_key:
        raise api_error(400, "this server requires a virtual key on /v1: give one as api_key", "api_key")
    return manager(state).start(spec, _own_v1(request), spec.api_key)


@router.post("/runs/{run_id}/stop", summary="Stop a run the server is running")
def stop_run(request: Request, run_id: str) -> dict[str, Any]:
    state = _state(request)
    run = runs_db.get_run(state.db, run_id)
    if run is None:
        raise api_error(404, f"no run with id {run_id!r}", "run_id", "run_not_found")
    if not manager(state).stop(run_id):
        raise api_error(409, f"run {run_id!r} is not running", "run_id", "run_not_running")
    return {"id": run_id, "stopping": True}


@router.get("/runs", summary="Stored runs, newest first")
def list_runs(
    request: Request,
    kind: Annotated[Literal["bench", "eval", "sweep"] | None, Query()] = None,
    deployment: Annotated[str | None, Query(description="Only runs of this model")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(description="Only runs created before this created_us (the next page)")] = None,
) -> dict[str, Any]:
    rows = runs_db.list_runs(_state(request).db, kind=kind, deployment=deployment, limit=limit, before_us=before)
    data = [with_status(r) for r in rows]
    return {"data": data, "next_before": rows[-1]["created_us"] if len(rows) == limit else None}


@router.get("/runs/{run_id}", summary="One stored run, with its parameters and report")
def get_run(request: Request, run_id: str) -> dict[str, Any]:
    run = runs_db.get_run(_state(request).db, run_id)
    if run is None:
        raise api_error(404, f"no run with id {run_id!r}", "run_id", "run_not_found")
    return with_status(run)
