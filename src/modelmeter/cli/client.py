"""A small synchronous client of a running server's /api, for the CLI commands."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import click

DEFAULT_URL = "http://127.0.0.1:8000"
_KEY_ENV = "MODELMETER_ADMIN_KEY"


def url_option() -> Any:
    return click.option(
        "--url",
        default=lambda: os.environ.get("MODELMETER_URL", DEFAULT_URL),
        show_default="$MODELMETER_URL or " + DEFAULT_URL,
        help="The running modelmeter server.",
    )


def admin_key_option() -> Any:
    """``--admin-key KEY`` (else $MODELMETER_ADMIN_KEY): the command gets it as ``admin_key`` for call()."""
    return click.option(
        "--admin-key",
        envvar=_KEY_ENV,
        metavar="KEY",
        help=f"The server's admin key, for its /api [${_KEY_ENV}].",
    )


def unauthorized(base: str, key: str | None) -> str:
    """What to do about a 401 (``key``: the one that was sent): which variable (or option) to set."""
    if key:
        return (
            f"401: {base} refused the admin key in ${_KEY_ENV} (or --admin-key); use the key that "
            "server printed at its first start, or the one it was started with"
        )
    return (
        f"401: {base} needs its admin key: export {_KEY_ENV}=… (the key serve printed at its "
        "first start) or pass --admin-key KEY"
    )


def call(base: str, method: str, path: str, body: Any = None, admin_key: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base.rstrip("/") + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    key = admin_key or os.environ.get(_KEY_ENV)
    if key:
        req.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise click.ClickException(unauthorized(base, key)) from None
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise click.ClickException(f"{exc.code}: {message}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach modelmeter at {base}: {exc.reason}") from None
    return json.loads(raw) if raw else None
