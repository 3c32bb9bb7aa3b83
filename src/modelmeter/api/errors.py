"""Errors of the /api routes, in the same JSON shape as the gateway's."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from modelmeter.gateway.errors import error_body
from modelmeter.storage.database import transient_errors

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
}


class APIHTTPError(HTTPException):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(status_code=status, detail=message)
        self.param = param
        self.code = code


def api_error(status: int, message: str, param: str | None = None, code: str | None = None) -> APIHTTPError:
    return APIHTTPError(status, message, param, code)


def install_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        param = getattr(exc, "param", None)
        code = getattr(exc, "code", None)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse(
            error_body(message, _TYPES.get(exc.status_code, "api_error"), param, code),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path")]
        param = ".".join(loc) or None
        message = f"{param}: {first.get('msg')}" if param else str(first.get("msg", "invalid request"))
        return JSONResponse(error_body(message, "invalid_request_error", param, "invalid_value"), status_code=400)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        # The database is away (restarting, full): say so, not a 500; the gateway keeps serving.
        return JSONResponse(
            error_body(
                "The database is unreachable right now; try again shortly.",
                "service_unavailable",
                None,
                "database_unavailable",
            ),
            status_code=503,
            headers={"retry-after": "5"},
        )

    app.add_exception_handler(HTTPException, http_error)
    for kind in transient_errors():
        app.add_exception_handler(kind, database_error)
    app.add_exception_handler(RequestValidationError, validation_error)
