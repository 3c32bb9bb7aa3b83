"""The target server: is it reachable, which models does it serve, is it a modelmeter server (and
does its /api let us in), and what did it record for a run (read back by its tag through /api).

/api needs the admin key (``--admin-key`` or ``MODELMETER_ADMIN_KEY``). A modelmeter server
without it answers 401 with ``WWW-Authenticate: Bearer realm="modelmeter"``: that is still a
modelmeter server, so the run keeps its Usage-tab URL and the user is told how to get the rest.

Client and server figures are compared on the same terms: request counts and token sums must be
equal; TTFT and latency percentiles are computed from the stored records with the client's own
percentile function, and the server's must not exceed the client's (the gateway's clock starts
after the client's and stops before it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from modelmeter.bench.metrics import RequestResult, percentile
from modelmeter.units import iso

Access = Literal["open", "locked", "none"]  # a modelmeter /api we may read, one refusing us, none
MAX_RECORDS = 50_000  # beyond this the latency rows are left out (paging would take too long)
_QS = (50, 90, 99)


class Unreachable(Exception):
    """The target cannot be reached at all."""


def root_of(base_url: str) -> str:
    """``http://host:8000/v1`` → ``http://host:8000``: where a modelmeter server has /api."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def window_for(seconds: float | None) -> str:
    """The Usage tab's smallest window that holds a run of ``seconds`` (unknown: 1h)."""
    if seconds is None or seconds <= 3600:
        return "1h"
    return "24h" if seconds <= 86400 else "7d"


def usage_url(root: str, model: str, tag: str, seconds: float | None = None) -> str:
    """The Usage tab filtered to the run, on a window that holds it, with Live on."""
    query = f"tag={quote(tag, safe=':')}&window={window_for(seconds)}&live=1"
    return f"{root}/models/{quote(model, safe='/')}?{query}"


def api_headers(admin_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {admin_key}"} if admin_key else {}


def locked_note(root: str, admin_key: str | None, missing: str = "no server figures for this run") -> str:
    """One line: why the server side is missing, and the fix."""
    why = "refused the admin key given" if admin_key else "needs the admin key"
    return (
        f"{root}/api {why} (401): {missing}; "
        "export MODELMETER_ADMIN_KEY=… (the key `modelmeter serve` printed) or pass --admin-key"
    )


async def get_json(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, Any]:
    """(status, parsed JSON or None); raises Unreachable when no connection can be made."""
    status, body, _ = await _get(session, url, headers or {}, timeout)
    return status, body


async def _get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], timeout: float
) -> tuple[int, Any, str]:
    """(status, parsed JSON or None, WWW-Authenticate header)."""
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            raw = await resp.read()
            challenge = resp.headers.get("www-authenticate", "")
            try:
                return resp.status, orjson.loads(raw), challenge
            except orjson.JSONDecodeError:
                return resp.status, None, challenge
    except aiohttp.ClientConnectorError as exc:
        raise Unreachable(exc.os_error.strerror or str(exc)) from None
    except TimeoutError:
        raise Unreachable("no answer in time") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise Unreachable(f"{type(exc).__name__}: {exc}") from None


async def served_models(session: aiohttp.ClientSession, base_url: str, headers: dict[str, str]) -> list[str] | None:
    """The ids of ``GET {base_url}/models``, or None if the server does not list them."""
    status, body = await get_json(session, base_url.rstrip("/") + "/models", headers)
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return None
    return [m["id"] for m in body["data"] if isinstance(m, dict) and isinstance(m.get("id"), str)]


async def api_access(session: aiohttp.ClientSession, root: str, headers: dict[str, str]) -> Access:
    """Whether ``root`` is a modelmeter server whose /api we may read ("open"), one that wants
    the admin key ("locked"), or something else ("none")."""
    try:
        status, body, challenge = await _get(session, root + "/api/deployments", headers, 5.0)
    except Unreachable:
        return "none"
    if status == 200 and isinstance(body, dict) and isinstance(body.get("data"), list):
        return "open"
    return "locked" if status == 401 and 'realm="modelmeter"' in challenge else "none"


def _window(start_wall: float) -> dict[str, str]:
    return {"start": iso(int((start_wall - 60) * 1e6)), "end": iso(int((time.time() + 60) * 1e6))}


async def recorded(
    session: aiohttp.ClientSession,
    root: str,
    model: str,
    tag: str,
    start_wall: float,
    expected: int,
    headers: dict[str, str],
    wait: float = 5.0,
) -> dict[str, Any]:
    """The server's summary for the tag (polled until it holds ``expected`` requests or ``wait``
    seconds passed; records are written asynchronously) and its records, paged."""
    base = f"{root}/api/deployments/{quote(model, safe='')}"
    deadline = time.monotonic() + wait
    summary: dict[str, Any] = {}
    while True:
        query = urlencode({"tag": tag, **_window(start_wall)})
        status, body = await get_json(session, f"{base}/usage?{query}", headers)
        if status != 200 or not isinstance(body, dict):
            raise Unreachable(f"GET /api/deployments/{model}/usage answered {status}")
        summary = body
        if summary.get("requests", 0) >= expected or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)
    records: list[dict[str, Any]] = []
    cursor: str | None = None
    while summary.get("requests", 0) <= MAX_RECORDS:
        params = {"tag": tag, "limit": "200", **_window(start_wall)}
        if cursor:
            params["cursor"] = cursor
        status, page = await get_json(session, f"{base}/requests?{urlencode(params)}", headers)
        if status != 200 or not isinstance(page, dict):
            raise Unreachable(f"GET /api/deployments/{model}/requests answered {status}")
        records.extend(page.get("data") or [])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return {"summary": summary, "records": records}


def _pcts(values: list[float]) -> dict[int, float | None]:
    data = sorted(values)
    return {q: round(percentile(data, q), 3) if data else None for q in _QS}


def compare(results: Sequence[RequestResult], server: dict[str, Any], tag: str) -> dict[str, Any]:
    """Rows of (metric, client, server, rule, ok) and whether they all hold."""
    summary, records = server["summary"], server["records"]
    ok_results = [r for r in results if r.ok]
    rows: list[dict[str, Any]] = []

    def row(metric: str, client: Any, srv: Any, rule: str) -> None:
        # "equal", or the server's figure may not exceed the client's (when both were measured)
        if rule.startswith("estimated"):
            good = True
        elif rule == "equal":
            good = client == srv
        else:
            good = client is None or srv is None or srv <= client + 0.001
        rows.append({"metric": metric, "client": client, "server": srv, "rule": rule, "ok": good})

    row("requests", len(results), summary.get("requests"), "equal")
    row("succeeded", len(ok_results), summary.get("succeeded"), "equal")
    row("failed", len(results) - len(ok_results), summary.get("failed"), "equal")
    complete = len(records) == summary.get("requests")
    stored_ok = [r for r in records if r.get("status") == "success"]
    # Tokens the server did not report are estimated on both sides, maybe with other encodings.
    rule = "equal" if all(r.usage_reported for r in ok_results) else "estimated: not compared"
    for name in ("prompt_tokens", "completion_tokens"):
        mine = sum(getattr(r, name) for r in ok_results)
        theirs = sum(int(r.get(name) or 0) for r in stored_ok) if complete else summary.get(name)
        row(name, mine, theirs, rule)
    if complete:
        c_ttft = _pcts([r.ttft * 1000 for r in ok_results if r.ttft is not None])
        s_ttft = _pcts([float(r["ttft_ms"]) for r in stored_ok if r.get("ttft_ms") is not None])
        c_e2e = _pcts([r.e2e * 1000 for r in ok_results])
        s_e2e = _pcts([float(r["latency_ms"]) for r in stored_ok])
        for q in _QS:
            row(f"ttft_ms p{q}", c_ttft[q], s_ttft[q], "server <= client")
        for q in _QS:
            row(f"latency_ms p{q}", c_e2e[q], s_e2e[q], "server <= client")
    tagged = sum(1 for r in records if tag in (r.get("tags") or []))
    return {
        "tag": tag,
        "rows": rows,
        "agree": all(r["ok"] for r in rows),
        "records_read": len(records),
        "records_tagged": tagged,
        "spend": summary.get("spend"),
        "note": None if complete else "latency rows left out: records not all read",
    }
