"""Admin access to everything but /v1 and the health checks: the dashboard, /api, /metrics, /docs.

A request is let in with ``Authorization: Bearer <admin key>``, or a session cookie (see
``auth.sessions``: its own server secret, 12 hours, sliding). Only the sign-in link, ``/`` or
``/login`` with ``?token=<admin key>``, takes the key in the URL: it sets that cookie (HttpOnly,
SameSite=Strict, Secure over HTTPS) and redirects to a clean local URL, as Jupyter does; ``/login``
has a form that does the same. A key in any other URL is ignored (URLs end up in logs and history).
Without a valid key an API URL answers 401 in the JSON error shape and a dashboard URL 401 with the
login page.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from modelmeter.asgi import ASGIApp, Receive, Scope, Send
from modelmeter.auth.secrets import key_hash, new_key, same
from modelmeter.auth.sessions import Sessions, rotate_session_secret
from modelmeter.error_shape import error_body
from modelmeter.storage.database import Database

log = logging.getLogger("modelmeter.auth")
COOKIE = "modelmeter_session"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)  # the page's own code and styles: no data in them
API_PREFIXES = ("/api/", "/metrics", "/docs", "/openapi.json", "/redoc")
_HASH_SETTING = "admin_key_sha256"
SIGN_IN_PATHS = frozenset({"/", "/login"})  # the only URLs that take ?token=
ADMIN_SCOPE = "modelmeter.admin"  # set on the open /readyz: did it come with the admin key?


@dataclass
class AdminKey:
    hash: str
    generated: str | None = None  # the key, only in the process that just generated it


def resolve_admin_key(db: Database, configured: str | None) -> AdminKey:
    """The configured key (env or config), else the stored hash, else a new key (hash stored)."""
    if configured:
        return AdminKey(key_hash(configured))
    row = db.fetchone("SELECT value FROM server_settings WHERE name = :n", {"n": _HASH_SETTING})
    if row:
        return AdminKey(str(row[0]))
    key = new_key("mm-admin")
    db.execute(
        "INSERT INTO server_settings (name, value) VALUES (:n, :v) ON CONFLICT (name) DO NOTHING",
        {"n": _HASH_SETTING, "v": key_hash(key)},
    )
    stored = db.fetchone("SELECT value FROM server_settings WHERE name = :n", {"n": _HASH_SETTING})
    assert stored is not None
    if stored[0] != key_hash(key):  # another process generated one first: theirs wins
        return AdminKey(str(stored[0]))
    return AdminKey(key_hash(key), generated=key)


def reset_admin_key(db: Database) -> str:
    """A new admin key; the session secret is rotated with it, so every session ends."""
    key = new_key("mm-admin")
    rotate_session_secret(db)
    db.execute("DELETE FROM server_settings WHERE name = :n", {"n": _HASH_SETTING})
    db.execute("INSERT INTO server_settings (name, value) VALUES (:n, :v)", {"n": _HASH_SETTING, "v": key_hash(key)})
    return key


class AdminAuth:
    """ASGI middleware in front of the non-/v1 app."""

    def __init__(self, app: ASGIApp, get_hash: Callable[[], str | None], get_secret: Callable[[], str | None]) -> None:
        self.app = app
        self._get_hash = get_hash
        self._get_secret = get_secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        admin, secret = self._get_hash(), self._get_secret()
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            if path == "/readyz":  # open, but its details only for the admin
                scope[ADMIN_SCOPE] = (
                    admin is not None
                    and secret is not None
                    and _authorised(dict(scope["headers"]), Sessions(secret, admin))[0]
                )
            await self.app(scope, receive, send)
            return
        if admin is None or secret is None:  # keys not resolved yet (start-up): refuse rather than guess
            await _send(send, 503, b"starting", "text/plain")
            return
        sessions = Sessions(secret, admin)
        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        query = dict(pairs)
        token = query.get("token")
        if token and path in SIGN_IN_PATHS and scope["method"] == "GET":
            if same(key_hash(token), admin):
                rest = urlencode([(k, v) for k, v in pairs if k not in ("token", "next")])
                target = query.get("next") or "/" + (f"?{rest}" if rest else "")
                await _redirect(send, _safe_next(target), _cookie(scope, sessions))
            else:
                await _send(
                    send,
                    401,
                    login_page(_safe_next(query.get("next", "/")), "That token is not the admin key."),
                    "text/html",
                )
            return
        if path == "/login":
            await self._login(scope, receive, send, sessions)
            return
        ok, expiry = _authorised(dict(scope["headers"]), sessions)
        if ok:
            if expiry is not None and sessions.stale(expiry):
                await self.app(scope, receive, _with_cookie(send, _cookie(scope, sessions)))
            else:
                await self.app(scope, receive, send)
            return
        if path.startswith(API_PREFIXES):
            message = (
                "The admin key is not taken in the URL (URLs end up in logs): send 'Authorization: Bearer <admin key>'."
                if token
                else "Admin key required: send 'Authorization: Bearer <admin key>'."
            )
            body = orjson.dumps(error_body(message, "authentication_error", None, "invalid_admin_key"))
            await _send(send, 401, body, "application/json", [(b"www-authenticate", b'Bearer realm="modelmeter"')])
        else:
            await _send(send, 401, login_page(path + _qs(scope)), "text/html")

    async def _login(self, scope: Scope, receive: Receive, send: Send, sessions: Sessions) -> None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        target = _safe_next(query.get("next", "/"))
        if scope["method"] != "POST":
            await _send(send, 200, login_page(target), "text/html")
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body") or len(body) > 65536:
                break
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        if same(key_hash(form.get("key", "")), sessions.admin_hash):
            await _redirect(send, _safe_next(form.get("next", target)), _cookie(scope, sessions))
        else:
            await _send(send, 401, login_page(target, "That is not the admin key."), "text/html")


def _authorised(headers: dict[bytes, bytes], sessions: Sessions) -> tuple[bool, int | None]:
    """Whether the admin key or a valid session came with the request; the session's expiry."""
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer " and same(key_hash(auth[7:].strip()), sessions.admin_hash):
        return True, None
    raw = headers.get(b"cookie")
    if raw:
        cookie = SimpleCookie()
        try:
            cookie.load(raw.decode("latin-1"))
        except Exception:
            return False, None
        morsel = cookie.get(COOKIE)
        expiry = sessions.expiry(morsel.value) if morsel is not None else None
        if expiry is not None:
            return True, expiry
    return False, None


def _with_cookie(send: Send, cookie: bytes) -> Send:
    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
        await send(message)

    return sending


def _https(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    return dict(scope["headers"]).get(b"x-forwarded-proto", b"") == b"https"


def _cookie(scope: Scope, sessions: Sessions) -> bytes:
    parts = [f"{COOKIE}={sessions.issue()}", "Path=/", "HttpOnly", "SameSite=Strict", f"Max-Age={sessions.ttl_s}"]
    if _https(scope):
        parts.append("Secure")
    return "; ".join(parts).encode()


def _qs(scope: Scope) -> str:
    # Without any token: the login form's next URL must not carry a key into the history either.
    q = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            if k != "token"
        ]
    )
    return f"?{q}" if q else ""


def _safe_next(target: str) -> str:
    """Only a local path: never an open redirect to another site. Browsers read ``//host``, ``/\\host``
    (a backslash is a slash to them) and control characters mixed in as another site."""
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return "/"
    return target


async def _redirect(send: Send, location: str, cookie: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1", "replace")),
                (b"set-cookie", cookie),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _send(
    send: Send, status: int, body: bytes, media: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", f"{media}; charset=utf-8".encode()), (b"cache-control", b"no-store"), *(extra or [])]
    if media == "text/html":
        headers.append(
            (
                b"content-security-policy",
                b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            )
        )
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def login_page(next_path: str, error: str | None = None) -> bytes:
    message = f'<p class="err">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in · modelmeter</title>
<style>
body{{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f6f7f9;color:#111;display:grid;
place-items:center;min-height:100vh;margin:0}}
form{{background:#fff;border:1px solid #e3e5e8;border-radius:12px;padding:28px 32px;width:340px;
box-shadow:0 1px 2px rgba(0,0,0,.04)}}
h1{{font-size:18px;margin:0 0 4px}} p{{color:#555;margin:0 0 16px;font-size:13px}}
input{{width:100%;box-sizing:border-box;padding:9px 10px;border:1px solid #cfd3d8;border-radius:8px;font:inherit}}
button{{margin-top:12px;width:100%;padding:9px;border:0;border-radius:8px;background:#111;color:#fff;font:inherit;
cursor:pointer}} .err{{color:#b42318}}
@media (prefers-color-scheme:dark){{body{{background:#0d0f12;color:#e8e8e8}}form{{background:#16191d;
border-color:#2a2f36}}input{{background:#0d0f12;color:#e8e8e8;border-color:#2a2f36}}button{{background:#e8e8e8;
color:#111}}p{{color:#9aa0a6}}}}
</style>
<form method="post" action="/login?next={html.escape(next_path, quote=True)}">
<h1>modelmeter</h1><p>Enter the admin key to open the dashboard. <code>modelmeter serve</code> printed a
sign-in link when it generated the key; <code>MODELMETER_ADMIN_KEY</code> sets your own.</p>{message}
<input type="password" name="key" autocomplete="current-password" placeholder="Admin key" autofocus required>
<input type="hidden" name="next" value="{html.escape(next_path, quote=True)}">
<button type="submit">Sign in</button></form></html>""".encode()
