"""A small synchronous client of a running server's /api, for the CLI commands."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import click

DEFAULT_URL = "http://127.0.0.1:8000"


def url_option() -> Any:
    return click.option("--url", default=lambda: os.environ.get("MODELMETER_URL", DEFAULT_URL),
                        show_default="$MODELMETER_URL or " + DEFAULT_URL,
                        help="The running modelmeter server.")


def call(base: str, method: str, path: str, body: Any = None, admin_key: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method,
                                 headers={"content-type": "application/json"})
    key = admin_key or os.environ.get("MODELMETER_ADMIN_KEY")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise click.ClickException(f"{exc.code}: {message}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach modelmeter at {base}: {exc.reason}") from None
    return json.loads(raw) if raw else None
