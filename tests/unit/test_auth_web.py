"""Issue #18, items 6 and 16 (web side): sessions with their own secret and a sliding 12-hour expiry,
the admin key in URLs only on the sign-in link, safe redirects, CSV formula escaping, the CSP of
/static/index.html and /docs, and the open /readyz without error text. Driven through the app's own
ASGI entry point (auth middleware included)."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import CannedResponse, MemoryUpstream, asgi_request, chat_completion, running_app, sqlite_url

from modelmeter.auth.admin import COOKIE, reset_admin_key
from modelmeter.auth.secrets import key_hash

KEY = "unit-admin-key"
DEPS = [{"name": "gpt", "model": "gpt-4o-mini", "api_base": "http://upstream.invalid/v1"}]
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _cookie_of(res: Any) -> str:
    return str(res.headers["set-cookie"]).split(";")[0]


async def _sign_in(app: Any) -> str:
    res = await asgi_request(app, "GET", "/", query=f"token={KEY}")
    assert res.status == 303
    return _cookie_of(res)


@pytest.mark.asyncio
async def test_the_admin_key_in_a_url_is_taken_only_by_the_sign_in_link(tmp_path: Path) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        for path in ("/api/deployments", "/metrics", "/openapi.json", "/docs"):
            res = await asgi_request(h.app, "GET", path, query=f"token={KEY}")
            assert res.status == 401, path
            assert "set-cookie" not in res.headers
        api = await asgi_request(h.app, "GET", "/api/deployments", query=f"token={KEY}")
        assert api.json()["error"]["code"] == "invalid_admin_key"
        assert "not taken in the URL" in api.json()["error"]["message"]
        page = await asgi_request(h.app, "GET", "/models/gpt", query=f"window=24h&token={KEY}")
        assert page.status == 401 and "set-cookie" not in page.headers
        assert KEY.encode() not in page.body and b"/models/gpt?window=24h" in page.body  # the login form
        # The sign-in links: / and /login.
        root = await asgi_request(h.app, "GET", "/", query=f"window=24h&token={KEY}")
        assert root.status == 303 and root.headers["location"] == "/?window=24h"
        login = await asgi_request(h.app, "GET", "/login", query=f"token={KEY}&next=/models/gpt")
        assert login.status == 303 and login.headers["location"] == "/models/gpt"
        assert COOKIE in login.headers["set-cookie"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\t/evil.example",
        "evil.example",
    ],
)
async def test_sign_in_redirects_stay_on_this_site(tmp_path: Path, target: str) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        from urllib.parse import quote, urlencode

        link = await asgi_request(h.app, "GET", "/login", query=urlencode({"token": KEY, "next": target}))
        assert link.status == 303 and link.headers["location"] == "/", target
        root = await asgi_request(h.app, "GET", "/", query=urlencode({"token": KEY, "next": target}))
        assert root.status == 303 and root.headers["location"] == "/", target
        form = await asgi_request(
            h.app, "POST", "/login", body=f"key={KEY}&next={quote(target)}".encode(), headers=FORM
        )
        assert form.status == 303 and form.headers["location"] == "/", target


@pytest.mark.asyncio
async def test_a_cookie_cannot_be_minted_from_the_stored_admin_hash(tmp_path: Path) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        admin_hash = key_hash(KEY)  # what a copy of the database or a backup gives away
        expiry = 4102444800  # 2100-01-01
        for version in ("v1", "v2"):
            mac = hmac.new(admin_hash.encode(), f"session:{expiry}".encode(), hashlib.sha256).hexdigest()
            forged = f"{version}.{expiry}.{mac}"
            res = await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": f"{COOKIE}={forged}"})
            assert res.status == 401, version
        # The secret that signs sessions is stored apart, random, not the key's hash.
        secret = h.db.fetchone("SELECT value FROM server_settings WHERE name = 'session_secret'")
        assert secret is not None and len(secret[0]) >= 64 and secret[0] != admin_hash
        # Even with the secret, a session is never longer than 12 hours.
        mac = hmac.new(secret[0].encode(), f"session:{expiry}:{admin_hash}".encode(), hashlib.sha256).hexdigest()
        res = await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": f"{COOKIE}=v2.{expiry}.{mac}"})
        assert res.status == 401


@pytest.mark.asyncio
async def test_sessions_last_12_hours_and_slide_with_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        res = await asgi_request(h.app, "GET", "/", query=f"token={KEY}")
        assert "Max-Age=43200" in res.headers["set-cookie"]
        cookie = _cookie_of(res)
        expiry = int(cookie.split(".")[1])
        assert abs(expiry - (time.time() + 12 * 3600)) < 60
        fresh = await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": cookie})
        assert fresh.status == 200 and "set-cookie" not in fresh.headers  # not re-issued on every call
        # Ten minutes later the cookie is re-issued with a later expiry; 13 hours later it is dead.
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 600)
        later = await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": cookie})
        assert later.status == 200 and COOKIE in later.headers["set-cookie"]
        assert int(_cookie_of(later).split(".")[1]) > expiry
        monkeypatch.setattr(time, "time", lambda: real() + 13 * 3600)
        dead = await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": cookie})
        assert dead.status == 401


@pytest.mark.asyncio
async def test_rotating_the_admin_key_ends_every_session(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "a.db")
    async with running_app(url, DEPS, auth=True, admin_key=KEY) as h:
        cookie = await _sign_in(h.app)
        assert (await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": cookie})).status == 200
    async with running_app(url, DEPS, auth=True, admin_key=KEY) as h:  # a restart keeps sessions
        assert (await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": cookie})).status == 200
    async with running_app(url, DEPS, auth=True, admin_key="another-key") as h:  # a new configured key
        assert (await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": cookie})).status == 401
    # A generated (stored) key rotated with reset_admin_key: the session secret is rotated with it.
    async with running_app(url, DEPS, auth=True) as h:
        new = reset_admin_key(h.db)
    async with running_app(url, DEPS, auth=True) as h:
        res = await asgi_request(h.app, "GET", "/", query=f"token={new}")
        cookie = _cookie_of(res)
        assert (await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": cookie})).status == 200
        newer = reset_admin_key(h.db)
    async with running_app(url, DEPS, auth=True) as h:
        assert (await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": cookie})).status == 401
        assert (await asgi_request(h.app, "GET", "/", query=f"token={newer}")).status == 303


@pytest.mark.asyncio
async def test_the_database_holding_the_secrets_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask: files would be world-readable
    try:
        async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
            await _sign_in(h.app)
    finally:
        os.umask(old)
    for path in tmp_path.glob("a.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def _formula_answer(call: Any) -> CannedResponse:
    return CannedResponse(200, chat_completion("gpt-4o-mini", id='=HYPERLINK("http://evil.example")'))


@pytest.mark.asyncio
async def test_csv_export_keeps_formulas_as_text(tmp_path: Path) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, MemoryUpstream(_formula_answer)) as h:
        res = await asgi_request(
            h.app, "POST", "/v1/chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert res.status == 200
        await h.records(1)
        export = await asgi_request(h.app, "GET", "/api/deployments/gpt/requests/export", query="window=1h&format=csv")
        rows = list(csv.DictReader(io.StringIO(export.body.decode())))
        assert rows[0]["request_id"] == '\'=HYPERLINK("http://evil.example")'
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for v in r.values())
        assert rows[0]["prompt_tokens"] != "" and not rows[0]["prompt_tokens"].startswith("'")


@pytest.mark.asyncio
async def test_the_page_and_docs_carry_a_content_security_policy(tmp_path: Path) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        cookie = await _sign_in(h.app)
        index = await asgi_request(h.app, "GET", "/static/index.html", headers={"cookie": cookie})
        assert index.status == 200
        assert "script-src 'self'" in index.headers["content-security-policy"]
        docs = await asgi_request(h.app, "GET", "/docs", headers={"cookie": cookie})
        assert docs.status == 200
        policy = docs.headers["content-security-policy"]
        scripts = policy.split("script-src")[1].split(";")[0]
        assert scripts.startswith(" 'self'") and "unsafe" not in scripts, policy
        # Each inline script of the page (if it has any) is allowed by its hash, nothing else inline.
        inline = re.findall(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", docs.body, re.DOTALL)
        for script in inline:
            digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
            assert f"'sha256-{digest}'" in policy


@pytest.mark.asyncio
async def test_the_open_readyz_shows_no_error_text(tmp_path: Path) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        state = h.app.state
        secret = "OperationalError: could not connect to db.internal:5432 as user ops"

        def down(*a: Any, **k: Any) -> None:
            raise RuntimeError(secret)

        state.db.fetchone = down
        state.recorder.last_error = secret
        try:
            open_ = await asgi_request(h.app, "GET", "/readyz")
            assert open_.status == 503
            assert b"db.internal" not in open_.body and b"RuntimeError" not in open_.body
            assert open_.json()["database"] == "unreachable"
            assert open_.json()["recorder"]["last_error"] is True
            admin = await asgi_request(h.app, "GET", "/readyz", headers={"authorization": f"Bearer {KEY}"})
            assert admin.status == 503 and b"db.internal" in admin.body and b"RuntimeError" in admin.body
        finally:
            del state.db.fetchone
            state.recorder.last_error = None
