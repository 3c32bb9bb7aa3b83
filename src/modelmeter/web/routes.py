"""The web page: the project's own static files, served by the same process.

The page is a small single-page app (plain JS modules, no build step): ``/`` lists the deployments,
``/models/<name>`` is a model card with its Usage tab and ``/models/<name>/requests/<id>`` the same
page with one request's drawer open. Every such path answers with ``index.html``; the browser-side
router reads the path. Plotly's JS bundle is served from the installed ``plotly`` package, so the
page works offline and the repository does not carry a copy of it.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from functools import cache
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"

# Everything the page runs is our own script. Plotly applies inline styles (style attributes and
# rules it adds at run time: refused under style-src 'self', checked), so those are allowed;
# nothing else is. No 'unsafe-eval': plotly's SVG charts do not need it.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
_FALLBACK = (
    b"<!doctype html><meta charset=utf-8><title>modelmeter</title><h1>modelmeter</h1>"
    b"<p>The usage API is at <a href=/docs>/docs</a>.</p>"
)
_lock = threading.Lock()


def plotly_path() -> Path | None:
    """``plotly.min.js`` inside the installed ``plotly`` package, or None if it is not there."""
    try:
        root = resources.files("plotly")
    except ModuleNotFoundError:
        return None
    for rel in ("package_data/plotly.min.js", "package_data/plotly.js"):
        candidate = Path(str(root.joinpath(rel)))
        if candidate.is_file():
            return candidate
    return None


@cache
def _plotly_bytes() -> tuple[bytes, bytes, str] | None:
    """The bundle as is and gzipped (4.8 MB -> ~1.4 MB), and its ETag, computed once per process."""
    path = plotly_path()
    if path is None:
        return None
    raw = path.read_bytes()
    # Weak: the same tag for both encodings. After max-age, a browser revalidates with it and gets
    # a 304 rather than the 1.4 MB again (until plotly is upgraded).
    etag = f'W/"{hashlib.sha256(raw).hexdigest()[:32]}"'
    return raw, gzip.compress(raw, compresslevel=6, mtime=0), etag


def warm_plotly() -> None:
    """Compress the bundle now (0.1-0.3 s of CPU), not in the first visitor's request for it."""
    with _lock:
        _plotly_bytes()


def _page() -> Response:
    page = STATIC / "index.html"
    body = page.read_bytes() if page.is_file() else _FALLBACK
    return Response(body, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def install_web(app: FastAPI) -> None:
    # Registered before the /static mount, which would otherwise answer this path with a 404.
    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js(request: Request) -> Response:
        with _lock:  # compressed at startup (warm_plotly); a request during that waits for it
            bundle = _plotly_bytes()
        if bundle is None:
            return Response(
                "// plotly is not installed: charts are unavailable\n", media_type="text/javascript", status_code=404
            )
        raw, packed, etag = bundle
        headers = {
            "cache-control": "public, max-age=86400",
            "etag": etag,
            "vary": "accept-encoding",
            "x-content-type-options": "nosniff",
        }
        if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["content-encoding"] = "gzip"
            return Response(packed, media_type="text/javascript", headers=headers)
        return Response(raw, media_type="text/javascript", headers=headers)

    @app.get("/static/index.html", include_in_schema=False)
    def index_file() -> Response:
        return _page()  # with the page's headers (CSP), which the static mount would not send

    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return _page()

    @app.get("/alerts", include_in_schema=False)
    @app.get("/compare", include_in_schema=False)
    @app.get("/runs", include_in_schema=False)
    @app.get("/runs/{rest:path}", include_in_schema=False)
    @app.get("/models", include_in_schema=False)
    @app.get("/models/{rest:path}", include_in_schema=False)
    def model_page(rest: str = "") -> Response:
        # /models/<name>, /models/<name>/requests/<id>: the browser-side router reads the path.
        return _page()
