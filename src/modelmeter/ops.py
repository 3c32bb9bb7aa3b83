"""Health and readiness checks for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelmeter.auth.admin import ADMIN_SCOPE

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
    if not request.scope.get(ADMIN_SCOPE, True):  # open to anyone: figures, not error text
        body = public_view(body)
    return JSONResponse(body, status_code=200 if ready else 503)


def public_view(value: Any, key: str = "") -> Any:
    """What the open /readyz shows: numbers and states; error texts (which may name hosts, paths or
    worse) only as whether there is one. The admin key (Bearer or session) sees them whole."""
    if isinstance(value, dict):
        return {k: public_view(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [public_view(v, key) for v in value]
    if isinstance(value, str) and "error" in key:
        return True
    if isinstance(value, str) and key == "database":
        return value.split(":", 1)[0]  # "unreachable", without the exception
    return value
