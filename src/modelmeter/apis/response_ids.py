"""/v1/responses/{id} (GET, DELETE), /v1/responses/{id}/input_items (GET) and
/v1/responses/{id}/cancel (POST), sent to the deployment that served that id (and, for a routed
deployment, to the upstream that answered it: routing/holders.py).

Which deployment (and upstream) served an id is kept in memory (bounded: the oldest ids are forgotten); an id not
known here (another gateway process, a restart) goes to the deployment named by a ``model`` query
parameter, else to the only deployment whose upstream speaks the Responses API. These calls carry
no tokens (the creating call holds the usage) and are recorded free (gateway/by_id.py); the
upstream's answer is passed through as it is."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs

from modelmeter.config import Deployment
from modelmeter.gateway.errors import APIError
from modelmeter.gateway.response_headers import passed_headers, upstream_request_id
from modelmeter.upstreams.client import Timeouts, UpstreamError
from modelmeter.upstreams.headers import upstream_headers
from modelmeter.upstreams.limits import LimitedResponse, ResponseLimits
from modelmeter.upstreams.scrub import Scrubber

PREFIX = "/v1/responses/"
MAX_IDS = 100_000
_ROUTES = {("", "GET"), ("", "DELETE"), ("/input_items", "GET"), ("/cancel", "POST")}
_DEFAULT_LIMITS = ResponseLimits()
_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


@runtime_checkable
class _Requester(Protocol):
    async def request(self, method: str, url: str, body: bytes | None, headers: Any, timeouts: Timeouts) -> Any: ...


class ResponseOwners:
    """Response id -> the deployment that served it and, for a routed deployment, the label of the
    upstream that answered (only that upstream holds the id); the newest MAX_IDS."""

    def __init__(self, limit: int = MAX_IDS) -> None:
        self._ids: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        self._limit = limit

    def note(self, response_id: Any, deployment: str, upstream: str | None = None) -> None:
        if isinstance(response_id, str) and _ID.match(response_id):
            self._ids[response_id] = (deployment, upstream)
            self._ids.move_to_end(response_id)
            if len(self._ids) > self._limit:
                self._ids.popitem(last=False)

    def get(self, response_id: str) -> str | None:
        found = self._ids.get(response_id)
        return found[0] if found is not None else None

    def upstream(self, response_id: Any, deployment: str) -> str | None:
        """The upstream of ``deployment`` that answered ``response_id`` (None: unknown here)."""
        found = self._ids.get(response_id) if isinstance(response_id, str) else None
        return found[1] if found is not None and found[0] == deployment else None

    def chained(self, body: dict[str, Any]) -> str | None:
        """The deployment that served ``previous_response_id``: a create call without a model
        continues where its chain began."""
        prev = body.get("previous_response_id")
        return self.get(prev) if isinstance(prev, str) else None


def parse_path(path: str, method: str) -> tuple[str, str]:
    """(id, suffix) of a by-id path; APIError 404/405 when it is none of the four."""
    rest = path[len(PREFIX) :]
    rid, _, tail = rest.partition("/")
    suffix = f"/{tail}" if tail else ""
    if not _ID.match(rid) or suffix not in ("", "/input_items", "/cancel"):
        raise APIError(404, f"Unknown endpoint {path}", code="unknown_url")
    if (suffix, method) not in _ROUTES:
        raise APIError(405, f"Method {method} is not allowed on {path}", code="method_not_allowed")
    return rid, suffix


def owner(rid: str, owners: ResponseOwners, query: bytes, deployments: list[Deployment], api_of: Any) -> Deployment:
    by_name = {d.name: d for d in deployments}
    name = owners.get(rid)
    if name is None:
        asked = parse_qs(query.decode("latin-1")).get("model")
        name = asked[0] if asked else None
    if name is not None and name in by_name:
        return by_name[name]
    speaking = [d for d in deployments if api_of(d) == "responses"]
    if name is None and len(speaking) == 1:
        return speaking[0]
    raise APIError(
        404,
        f"No deployment is known to hold the response '{rid}'; add ?model=<deployment> to the URL.",
        param="model",
        code="model_not_found",
    )


async def forward(
    client: Any,
    dep: Deployment,
    base: str,
    method: str,
    rid: str,
    suffix: str,
    query: bytes,
    body: bytes,
    limits: ResponseLimits = _DEFAULT_LIMITS,
    scrub: Scrubber | None = None,
) -> tuple[int, list[tuple[bytes, bytes]], bytes, str | None]:
    """Send it on; the upstream's status, headers to pass, body (read within ``limits``, secrets
    scrubbed, as every answer the relay passes on) and request id."""
    if not isinstance(client, _Requester):
        raise APIError(501, "This upstream client cannot forward this request.", "server_error", code="not_supported")
    params = parse_qs(query.decode("latin-1"))
    params.pop("model", None)  # ours, not the upstream's
    qs = "&".join(f"{k}={v}" for k, values in params.items() for v in values)
    url = f"{base}/responses/{rid}{suffix}" + (f"?{qs}" if qs else "")
    try:
        raw = await client.request(
            method, url, body or None, upstream_headers(dep), Timeouts(total=dep.timeout, connect=dep.connect_timeout)
        )
        resp = LimitedResponse(raw, limits, scrub)
        try:
            data: bytes = await resp.read()
        finally:
            resp.close()
    except UpstreamError as exc:
        raise APIError(502, exc.message, "upstream_error", code=f"upstream_{exc.kind}") from None
    return resp.status, passed_headers(resp.headers), data, upstream_request_id(resp.headers)
