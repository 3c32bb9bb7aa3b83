"""The OpenAPI page at /docs: Swagger UI 5 (it reads OpenAPI 3.1, which FastAPI writes; the 4.x of
``swagger-ui-bundle`` could not: "Unable to render this definition"), its files served from the
installed ``fastapi-offline`` package, so the page works offline and never calls a CDN.

The page has no inline script (FastAPI's own docs page has one): it loads the bundle, then our own
``/static/js/docs.js`` starts it, so ``script-src 'self'`` holds. Swagger UI sets inline styles and
uses data: images in its CSS, hence ``DOCS_CSP``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>modelmeter API</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/static/js/docs.js"></script>
</body>
</html>
"""


def swagger_assets() -> Path:
    """The folder holding Swagger UI 5's ``swagger-ui-bundle.js`` and ``swagger-ui.css``."""
    return Path(str(resources.files("fastapi_offline").joinpath("static")))


def install_docs(app: FastAPI) -> None:
    app.mount("/docs/assets", StaticFiles(directory=swagger_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(
            _PAGE,
            headers={
                "content-security-policy": DOCS_CSP,
                "x-content-type-options": "nosniff",
                "cache-control": "no-cache",
            },
        )
