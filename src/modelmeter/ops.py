"""Health and readiness checks for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to serve; shows the database and the recorder's backlog")
def readyz(request: Request) -> JSONResponse:
    state = request.app.state.mm
    body: dict[str, Any] = {"recorder": state.recorder.backlog, "records_written": state.recorder.written}
    try:
        state.db.fetchone("SELECT 1")
        body["database"] = "ok"
        ready = True
    except Exception as exc:
        body["database"] = f"unreachable: {type(exc).__name__}"
        state.db.reset_connection()
        ready = False
    problem = state.recorder.problem  # e.g. a full disk: records held in memory, or lost
    if problem is not None:
        body["reason"] = problem
        ready = False
    body["status"] = "ready" if ready else "not ready"
    return JSONResponse(body, status_code=200 if ready else 503)
