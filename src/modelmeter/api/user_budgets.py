"""Budgets per end user under /api/user-budgets: set (or change), list, remove."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field

from modelmeter.api.errors import api_error
from modelmeter.budgets.users import BudgetError

router = APIRouter(prefix="/api/user-budgets", tags=["budgets"])


class NewBudget(BaseModel):
    user: str = Field(min_length=1, max_length=256, description="The end user: the requests' `user` field")
    # Stored in pico-USD in a BIGINT: up to a million dollars.
    budget_usd: float = Field(gt=0, le=1_000_000, description="Spend allowed from now on, USD")


@router.put("", summary="Set a user's budget (calls naming that user get 429 once it is spent)")
def set_budget(request: Request, body: Annotated[NewBudget, Body()]) -> dict[str, Any]:
    try:
        return dict(request.app.state.mm.user_budgets.set(body.user, body.budget_usd).public())
    except BudgetError as exc:
        raise api_error(400, str(exc), "user") from None


@router.get("", summary="List the users' budgets and their spend")
def list_budgets(request: Request) -> dict[str, Any]:
    return {"data": [b.public() for b in request.app.state.mm.user_budgets.list()]}


@router.delete("/{user}", status_code=204, summary="Remove a user's budget: no limit from now on")
def remove_budget(request: Request, user: str) -> Response:
    if not request.app.state.mm.user_budgets.remove(user):
        raise api_error(404, f"no budget for user {user!r}", "user", "budget_not_found")
    return Response(status_code=204)
