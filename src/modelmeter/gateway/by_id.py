"""The Responses API's calls on a stored response (GET/DELETE /v1/responses/{id}, GET .../input_items,
POST .../cancel): forwarded to the deployment that served the id (apis/response_ids.py), for a
routed deployment to the upstream that answered it (routing/holders.py), and each recorded as its
own call type.

They carry no tokens: the usage belongs to the call that created the response, already recorded,
so these are recorded with a reported usage of zero (never estimated) and cost nothing; except the
first to see a background response finished, which carries its usage (apis/background.py). Every one
that names a deployment is recorded, errors included (a bad key, an id the upstream does not know).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from modelmeter.apis import response_ids
from modelmeter.apis.routing import upstream_api
from modelmeter.asgi import Scope, Send
from modelmeter.gateway.errors import JSON_HEADERS, APIError, send_json, upstream_error_message
from modelmeter.gateway.response_headers import request_id_header
from modelmeter.gateway.sessions import session_id
from modelmeter.metering.record import CallRecord, new_record_id
from modelmeter.metering.usage import Usage
from modelmeter.routing.holders import by_id_target
from modelmeter.upstreams.limits import limits_for, scrubber_for

if TYPE_CHECKING:
    from modelmeter.auth.keys import KeyStore
    from modelmeter.config import Deployment
    from modelmeter.gateway.handler import Gateway

CALL_TYPES = {
    ("", "GET"): "responses_get",
    ("", "DELETE"): "responses_delete",
    ("/input_items", "GET"): "responses_input_items",
    ("/cancel", "POST"): "responses_cancel",
}


async def serve(
    gw: Gateway,
    scope: Scope,
    send: Send,
    path: str,
    read_body: Callable[[], Awaitable[bytes]],
    disconnected: type[Exception],
) -> None:
    t0 = time.perf_counter()
    wall = time.time()
    method = scope["method"]
    query = scope.get("query_string", b"")
    try:
        rid, suffix = response_ids.parse_path(path, method)
        dep = response_ids.owner(rid, gw.response_owners, query, gw.registry.all(), upstream_api)
    except APIError as exc:  # names no deployment: nothing to record it against
        await send_json(send, exc.status, orjson.dumps(exc.body()))
        return
    headers = dict(scope["headers"])
    client = scope.get("client")
    rec = CallRecord(
        id=new_record_id(wall),
        deployment=dep,
        model=dep.name,
        call_type=CALL_TYPES[(suffix, method)],
        start=wall,
        client_ip=client[0] if client else None,
        metadata={"response_id": rid},
        session_id=session_id(headers, {}),
        usage=Usage(reported=True),  # zero, as reported: never estimated
        max_stored_body_bytes=gw.settings.max_stored_body_bytes,
    )
    try:
        body = await read_body()
        rec.request_body = _parsed(body) if body else None
        key = None
        if gw.keys is not None:
            rec.key_alias, key = authenticate(gw.keys, headers)
        udep, base = _target(gw, dep, rid, rec)
        t_up = time.perf_counter()
        status, passed, data, upstream_id = await response_ids.forward(
            gw.upstream,
            udep,
            base,
            method,
            rid,
            suffix,
            query,
            body,
            limits_for(udep, gw.limits),
            scrubber_for(udep.api_key(), key),
        )
        waited = time.perf_counter() - t_up
        rec.upstream_reached = True
        rec.request_id = upstream_id or rec.id
        rec.response_body = _parsed(data)
        rec.http_status = status
        gw.background.settled(rec, rec.response_body)
        if status >= 400:
            rec.status = "error"
            rec.error = upstream_error_message(status, data)[0]
        _settle(rec, t0, waited)
        await send_json(send, status, data, [*JSON_HEADERS, *passed, request_id_header(rec.request_id)])
    except disconnected:
        _fail(rec, 499, "client_disconnected", None)
        _settle(rec, t0)
    except APIError as exc:
        _fail(rec, exc.status, exc.message, exc.body())
        _settle(rec, t0)
        await send_json(send, exc.status, orjson.dumps(exc.body()), [*JSON_HEADERS, request_id_header(rec.id)])
    finally:
        if not rec.end:  # a failure of ours or of the connection: still recorded
            _fail(rec, rec.http_status if rec.status == "error" else 499, rec.error or "client_disconnected", None)
            _settle(rec, t0)
        await gw.recorder.submit(rec)


def _target(gw: Gateway, dep: Deployment, rid: str, rec: CallRecord) -> tuple[Deployment, str]:
    """Where the call goes: a routed deployment's upstream that answered the id (else one routed
    as usual: routing/holders.py), with its own URL, key and limits; else the deployment's URL."""
    if dep.upstreams:
        udep, url, label = by_id_target(gw.router.pool(dep), gw.response_owners.upstream(rid, dep.name), gw.registry)
        rec.deployment, rec.served_by = udep, label  # (no attempts: not a routed call in the split)
        return udep, url
    base = gw.registry.base_url(dep)
    if base is None:
        raise APIError(503, f"'{dep.name}' is not ready.", "service_unavailable", code="model_loading")
    return dep, base


def authenticate(keys: KeyStore, headers: dict[bytes, bytes]) -> tuple[str, str]:
    """The alias and the key of the caller's virtual key (``Authorization: Bearer`` or ``x-api-key``), or a 401.
    No limits are checked: these calls are free, and a background response must stay pollable."""
    auth = headers.get(b"authorization", b"").decode("latin-1")
    key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    key = key or headers.get(b"x-api-key", b"").decode("latin-1").strip()
    vk = keys.lookup(key) if key else None
    if vk is None:
        raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")
    return vk.alias, key


def _parsed(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data  # stored as text


def _fail(rec: CallRecord, status: int, message: str, body: Any) -> None:
    rec.status = "error"
    rec.http_status = status
    rec.error = message
    if body is not None:
        rec.response_body = body


def _settle(rec: CallRecord, t0: float, upstream_wait: float = 0.0) -> None:
    elapsed = time.perf_counter() - t0
    rec.latency_ms = rec.ttft_ms = elapsed * 1000.0
    rec.overhead_ms = max(elapsed - upstream_wait, 0.0) * 1000.0
    rec.end = rec.start + elapsed
    rec.request_id = rec.request_id or rec.id
