"""Admin access: every route but /v1 and the health checks refuses a missing or wrong key.

The route walk reads the app's own route table, so a route added later cannot be forgotten."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from starlette.routing import Mount
from tests.helpers import asgi_request, running_app, sqlite_url

from modelmeter.auth.admin import COOKIE
from modelmeter.auth.sessions import Sessions

KEY = "unit-admin-key"
OPEN = {"/healthz", "/readyz", "/login"}
DEPS = [{"name": "gpt", "model": "gpt-4o-mini", "api_base": "http://upstream.invalid/v1"}]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def every_route(routes: list, prefix: str = "") -> list[tuple[str, str]]:  # type: ignore[type-arg]
    out: list[tuple[str, str]] = []
    for route in routes:
        if hasattr(route, "original_router"):  # an included router (FastAPI keeps it whole)
            out += every_route(route.original_router.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            out.append(("GET", prefix + route.path + "/anything.js"))
        else:  # starlette Routes and FastAPI's APIRoutes alike
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                if method != "HEAD":
                    out.append((method, prefix + concrete(route.path)))
    return out


@pytest.mark.asyncio
async def test_every_route_refuses_a_missing_or_wrong_key(tmp_path: Path) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        routes = every_route(h.app.api.routes)
        assert len(routes) > 15  # the walk really sees the table
        paths = {p for _, p in routes}
        assert {"/api/deployments", "/api/requests/x", "/metrics", "/docs", "/openapi.json", "/"} <= paths
        for method, path in routes:
            is_open = path in OPEN or path.startswith("/static/")
            for headers in ({}, {"authorization": "Bearer wrong"}, {"cookie": f"{COOKIE}=v1.9999999999.bad"}):
                res = await asgi_request(h.app, method, path, headers=headers)
                if is_open:
                    assert res.status != 401, (method, path)
                else:
                    assert res.status == 401, (method, path, headers, res.status)
            good = await asgi_request(h.app, method, path, headers={"authorization": f"Bearer {KEY}"})
            assert good.status != 401, (method, path)


@pytest.mark.asyncio
async def test_api_401_is_json_and_dashboard_401_is_a_login_page(tmp_path: Path) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        api = await asgi_request(h.app, "GET", "/api/deployments")
        assert api.status == 401
        assert api.json()["error"]["type"] == "authentication_error"
        assert set(api.json()["error"]) == {"message", "type", "param", "code"}
        page = await asgi_request(h.app, "GET", "/models/gpt")
        assert page.status == 401
        assert page.headers["content-type"].startswith("text/html")
        assert b'name="key"' in page.body and b"/models/gpt" in page.body
        # /v1 is not behind the admin key (virtual keys guard it when require_keys is on).
        v1 = await asgi_request(h.app, "GET", "/v1/models")
        assert v1.status == 200


@pytest.mark.asyncio
async def test_token_in_url_sets_a_strict_cookie_and_redirects_to_the_clean_url(tmp_path: Path) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        res = await asgi_request(h.app, "GET", "/", query=f"window=24h&token={KEY}")
        assert res.status == 303
        assert res.headers["location"] == "/?window=24h"
        cookie = res.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        value = cookie.split(";")[0]
        ok = await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": value})
        assert ok.status == 200
        https = await asgi_request(h.app, "GET", "/", query=f"token={KEY}", headers={"x-forwarded-proto": "https"})
        assert "Secure" in https.headers["set-cookie"]
        bad = await asgi_request(h.app, "GET", "/", query="token=nope")
        assert bad.status == 401 and "set-cookie" not in bad.headers


@pytest.mark.asyncio
async def test_login_form(tmp_path: Path) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        form = await asgi_request(h.app, "GET", "/login", query="next=/models/gpt")
        assert form.status == 200 and b"<form" in form.body
        wrong = await asgi_request(
            h.app,
            "POST",
            "/login",
            body=b"key=nope&next=/models/gpt",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert wrong.status == 401 and "set-cookie" not in wrong.headers
        right = await asgi_request(
            h.app,
            "POST",
            "/login",
            body=f"key={KEY}&next=/models/gpt".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert right.status == 303 and right.headers["location"] == "/models/gpt"
        assert COOKIE in right.headers["set-cookie"]
        # Never an open redirect to another site.
        away = await asgi_request(
            h.app,
            "POST",
            "/login",
            body=f"key={KEY}&next=//evil.example/".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert away.headers["location"] == "/"


@pytest.mark.asyncio
async def test_sessions_end_when_the_admin_key_changes(tmp_path: Path) -> None:
    async with running_app(sqlite_url(tmp_path / "a.db"), DEPS, auth=True, admin_key=KEY) as h:
        from modelmeter.auth.secrets import key_hash

        secret = h.app.state.session_secret
        assert secret is not None
        stale = Sessions(secret, key_hash("the-old-key")).issue()
        res = await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": f"{COOKIE}={stale}"})
        assert res.status == 401
        expired = Sessions(secret, key_hash(KEY)).issue(now=time.time() - 13 * 3600)
        res = await asgi_request(h.app, "GET", "/api/deployments", headers={"cookie": f"{COOKIE}={expired}"})
        assert res.status == 401
