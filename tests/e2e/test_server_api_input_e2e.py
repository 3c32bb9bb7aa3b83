"""Bad input to /api is a 400 in the API's JSON error shape, never a 500 with a traceback (issue
#18.14), on SQLite and on PostgreSQL: out-of-range dates, cursors beyond any integer column, NUL
characters in parameters, and timeseries windows that would need more buckets than one answer holds."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ServerProcess, closed_port_url, sqlite_url, write_config
from tests.reliability.support import fresh_pg_database

pytestmark = pytest.mark.timeout(120)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp(f"api-input-{request.param}")
    with fresh_pg_database() if request.param == "postgresql" else contextlib.nullcontext(None) as pg:
        database = pg or sqlite_url(tmp / "modelmeter.db")
        cfg = write_config(
            tmp / "modelmeter.toml",
            database=database,
            deployments=[{"name": "chat", "model": "gpt-4o-mini", "api_base": closed_port_url()}],
        )
        with ServerProcess(cfg, log_dir=tmp / "logs") as srv:
            yield srv


ROUTES = [
    "/api/deployments/chat/usage",
    "/api/deployments/chat/usage/timeseries",
    "/api/deployments/chat/usage/distribution",
    "/api/deployments/chat/usage/throughput",
    "/api/deployments/chat/usage/errors",
    "/api/deployments/chat/usage/breakdown",
    "/api/deployments/chat/requests",
    "/api/deployments/chat/requests/export",
]
FAR_WINDOWS = [
    "start=0001-01-01T00:00:00&end=9999-12-31T23:59:59",
    "start=0001-01-01T00:00:00%2B14:00&end=2026-01-01",
    "start=2026-01-01&end=9999-12-31T23:59:59-12:00",
    "start=0001-01-01&end=0001-01-02",
    "start=9999-12-30&end=9999-12-31",
    "start=0001-01-01T00:00:00&end=9999-12-31T23:59:59&tz=Pacific/Kiritimati",
    "start=0001-01-01T00:00:00&end=9999-12-31T23:59:59&tz=America/Adak",
]
NUL = [
    "/api/deployments/chat/requests?tag=a%00b",
    "/api/deployments/chat/requests?request_id=%00",
    "/api/deployments/chat/requests?key_alias=x%00",
    "/api/deployments/chat/usage?tag=%00",
    "/api/deployments/chat/usage/timeseries?tag=%00",
    "/api/deployments/chat/usage/distribution?tag=%00",
    "/api/deployments/chat/usage/throughput?tz=Europe/Paris%00",
    "/api/deployments/chat/usage?tz=Europe/Paris%00",
    "/api/deployments/chat/requests/export?tag=%00",
    f"/api/deployments/chat/requests?cursor={_cursor(chr(0) + ':x')}",
    f"/api/deployments/chat/requests?cursor={_cursor('1:' + chr(0))}",
    "/api/deployments/ch%00at/usage",
    "/api/requests/abc%00def",
    "/api/deployments/x%00y",
]
HUGE_CURSORS = [
    f"/api/deployments/chat/requests?cursor={_cursor('9' * 30 + ':x')}",
    f"/api/deployments/chat/requests?cursor={_cursor(str(2**63) + ':x')}",
    f"/api/deployments/chat/requests?cursor={_cursor(str(-(2**63) - 1) + ':x')}",
    f"/api/deployments/chat/requests?after={_cursor('9' * 30 + ':x')}",
]


def _is_400(server: ServerProcess, path: str) -> dict[str, Any]:
    status, body = server.api("GET", path)
    assert status == 400, (path, status, body)
    assert isinstance(body, dict) and set(body["error"]) >= {"message", "type", "param", "code"}, body
    assert "Traceback" not in str(body)
    return body["error"]


@pytest.mark.parametrize("window", FAR_WINDOWS)
@pytest.mark.parametrize("route", ROUTES)
def test_dates_out_of_range_are_400(server: ServerProcess, route: str, window: str) -> None:
    error = _is_400(server, f"{route}?{window}")
    assert error["param"] in ("start", "end", "window"), error


@pytest.mark.parametrize("path", NUL)
def test_nul_in_parameters_is_400(server: ServerProcess, path: str) -> None:
    _is_400(server, path)


@pytest.mark.parametrize("path", HUGE_CURSORS)
def test_huge_cursors_are_400(server: ServerProcess, path: str) -> None:
    assert _is_400(server, path)["param"] in ("cursor", "after")


def test_usage_previous_window_of_the_longest_window_answers(server: ServerProcess) -> None:
    status, body = server.api("GET", "/api/deployments/chat/usage?start=1970-01-01&end=2199-12-31")
    assert status == 200, body
    assert body["previous"]["requests"] == 0 and body["previous"]["end"] == body["start"]
    error = _is_400(server, "/api/deployments/chat/usage/throughput?start=1970-01-01&end=2199-12-31")
    assert "buckets" in error["message"], error
    status, body = server.api("GET", "/api/deployments/nope/usage/distribution?window=1h")
    assert status == 404 and body["error"]["code"] == "deployment_not_found", body


def test_timeseries_buckets_are_capped(server: ServerProcess) -> None:
    error = _is_400(server, "/api/deployments/chat/usage/timeseries?start=1970-01-01&end=2199-12-31")
    assert "buckets" in error["message"], error
    # the longest window that still fits is answered, within the cap
    status, body = server.api("GET", "/api/deployments/chat/usage/timeseries?start=2000-01-01&end=2026-01-01")
    assert status == 200, body
    assert len(body["buckets"]) <= 10_000


@pytest.mark.parametrize("route", ROUTES)
def test_ordinary_windows_still_answer(server: ServerProcess, route: str) -> None:
    status, body = server.api("GET", f"{route}?start=2026-01-01&end=2026-02-01&tz=Europe/Paris")
    assert status == 200, body


def test_insight_endpoints_are_documented(server: ServerProcess) -> None:
    """/docs reads /openapi.json: each panel's endpoint is there, with what its numbers mean."""
    status, doc = server.api("GET", "/openapi.json")
    assert status == 200
    for path, words in (
        ("/api/deployments/{name}/usage/distribution", ("p95_ms", "bars", "low_ms")),
        ("/api/deployments/{name}/usage/throughput", ("output_tokens_per_s", "ms_per_output_token")),
        ("/api/deployments/{name}/usage", ("previous",)),
        ("/api/deployments/{name}/usage/errors", ("rate_limited", "upstream", "totals")),
        ("/api/deployments/{name}/usage/breakdown", ("error_rate", "spend", "csv")),
    ):
        op = doc["paths"][path]["get"]
        text = op["summary"] + op.get("description", "")
        assert all(w in text for w in words), (path, text)


def test_a_breakdown_by_an_unknown_dimension_is_400(server: ServerProcess) -> None:
    error = _is_400(server, "/api/deployments/chat/usage/breakdown?by=colour&window=1h")
    assert error["param"] == "by" or "by" in error["message"], error
    status, body = server.api("GET", "/api/deployments/chat/usage/breakdown?by=call_type&window=1h&format=csv")
    assert (
        status == 200
        and str(body).splitlines()[0]
        == "value,requests,failed,error_rate,prompt_tokens,completion_tokens,total_tokens,spend"
    )
