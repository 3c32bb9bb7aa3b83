"""The web page: the project's own static files, served by the same process."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install_web(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False, response_model=None)
    async def index() -> FileResponse | HTMLResponse:
        page = STATIC / "index.html"
        if page.exists():
            return FileResponse(page)
        return HTMLResponse("<h1>modelmeter</h1><p>The usage API is at <a href=/docs>/docs</a>.</p>")
