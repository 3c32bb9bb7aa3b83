"""The upstreams of routed deployments: their health, and an operator's reset of one taken out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from modelmeter.api.errors import api_error

router = APIRouter(prefix="/api/upstreams", tags=["upstreams"])


class ResetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deployment: str
    upstream: str


@router.get("", summary="Health of every upstream of the deployments that have several")
async def health(request: Request) -> dict[str, Any]:
    state = request.app.state.mm
    data = []
    for dep in state.registry.all():
        if dep.upstreams:
            data.append({"deployment": dep.name, "upstreams": state.router.pool(dep).health()})
    return {"data": data}


@router.post("/reset", summary="Put an upstream that is out (401/402/403) or cooling back in service")
async def reset(request: Request, body: ResetBody) -> dict[str, Any]:
    state = request.app.state.mm
    dep = state.registry.get(body.deployment)
    if dep is None or not dep.upstreams:
        raise api_error(404, f"no deployment with upstreams named {body.deployment!r}", "deployment", "not_found")
    pool = state.router.pool(dep)
    for i, up in enumerate(pool.upstreams):
        if up.label == body.upstream:
            pool.breakers[i].reset()
            state.router.changed(pool, i)
            return {"deployment": dep.name, "upstream": pool.health()[i]}
    raise api_error(404, f"{body.deployment!r} has no upstream named {body.upstream!r}", "upstream", "not_found")
