"""Virtual keys under /api/keys: create (the key is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field

from modelmeter.api.errors import api_error
from modelmeter.auth.keys import KeyError_

router = APIRouter(prefix="/api/keys", tags=["keys"])


class NewKey(BaseModel):
    alias: str = Field(description="A name for the key, shown in records and the Usage tab")
    rpm: int | None = Field(None, ge=1, le=2**31 - 1, description="Requests per minute")
    tpm: int | None = Field(None, ge=1, le=2**31 - 1, description="Tokens per minute")
    # Stored in pico-USD in a BIGINT: up to a million dollars.
    budget_usd: float | None = Field(None, gt=0, le=1_000_000, description="Total spend allowed, USD")


@router.post("", status_code=201, summary="Create a virtual key; the key is in this answer only")
def create_key(request: Request, body: Annotated[NewKey, Body()]) -> dict[str, Any]:
    store = request.app.state.mm.keys
    try:
        key, vk = store.create(body.alias, rpm=body.rpm, tpm=body.tpm, budget_usd=body.budget_usd)
    except KeyError_ as exc:
        status = 409 if "already exists" in str(exc) else 400
        raise api_error(status, str(exc), "alias") from None
    return {**vk.public(), "key": key}


@router.get("", summary="List virtual keys (never the keys themselves)")
def list_keys(request: Request) -> dict[str, Any]:
    return {"data": [vk.public() for vk in request.app.state.mm.keys.list()]}


@router.delete("/{alias}", status_code=204, summary="Revoke a key: refused from now on")
def revoke_key(request: Request, alias: str) -> Response:
    if not request.app.state.mm.keys.revoke(alias):
        raise api_error(404, f"no active key with alias {alias!r}", "alias", "key_not_found")
    return Response(status_code=204)
