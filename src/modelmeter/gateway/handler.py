"""The /v1 endpoints: a plain ASGI handler on the hot path.

One parse of the request, one upstream call through the pooled client, the upstream's bytes relayed
as they come (SSE events are read once for usage and passed on unchanged), and one record handed to
the recorder's queue at the end. Every request that names a deployment is recorded, whatever happens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from modelmeter.apis import response_ids
from modelmeter.apis.background import PendingUsage
from modelmeter.apis.base import FrontDoor
from modelmeter.apis.routing import DOORS, upstream_api
from modelmeter.asgi import Receive, Scope, Send
from modelmeter.auth.keys import KeyStore, LimitExceeded
from modelmeter.budgets.users import UserBudgets
from modelmeter.config import Deployment, Settings
from modelmeter.gateway import by_id
from modelmeter.gateway.cache import ResponseCache
from modelmeter.gateway.errors import JSON_HEADERS, APIError, error_body, send_json
from modelmeter.gateway.guards import HOP_HEADER, HopGuard, check_json_content_type
from modelmeter.gateway.kinds import check_kind
from modelmeter.gateway.metadata import TAGS_HEADER, request_metadata
from modelmeter.gateway.rejects import RejectBudget, settle_rejection
from modelmeter.gateway.relay import Call, relay
from modelmeter.gateway.response_headers import request_id_header
from modelmeter.gateway.sessions import session_id
from modelmeter.gateway.translated import pair_for, relay_translated
from modelmeter.gateway.validate import check_fields, check_stream, parse_body
from modelmeter.metering.record import CallRecord, new_record_id
from modelmeter.otel.context import start_trace
from modelmeter.recording.sink import RecordSink
from modelmeter.registry import Registry
from modelmeter.routing.pool import Router
from modelmeter.routing.serve import serve_routed
from modelmeter.upstreams.client import UpstreamClient
from modelmeter.upstreams.limits import LIMIT_FIELDS, ResponseLimits, limits_for

MODELS_PREFIX = "/v1/models/"
PASSED_HEADERS = (b"anthropic-version", b"anthropic-beta")  # the client's API headers sent upstream
log = logging.getLogger("modelmeter.gateway")


class _Disconnected(Exception):
    pass


@dataclass(slots=True)
class _Watch:
    task: asyncio.Task[Any] | None
    done: bool = False
    disconnected: bool = False
    call: Call | None = None  # once the response is complete, a disconnect is no hang-up


class Gateway:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        upstream: UpstreamClient,
        recorder: RecordSink,
        keys: KeyStore | None = None,
        user_budgets: UserBudgets | None = None,
    ) -> None:
        self.keys = keys  # virtual keys, when the server requires them
        self.user_budgets = user_budgets  # spend limits per end user (the body's "user")
        self.settings = settings
        self.registry = registry
        self.upstream = upstream
        self.recorder = recorder
        self.cache = ResponseCache()  # answers of deployments with cache_ttl
        self.router = Router()  # the upstreams of deployments that have several, and their breakers
        self.hops = HopGuard()  # this gateway's id in x-modelmeter-hop
        self.rejects = RejectBudget(settings.rejected_per_minute)
        self.limits = ResponseLimits(**{name: getattr(settings, name) for name in LIMIT_FIELDS})
        self.response_owners = response_ids.ResponseOwners()  # which deployment served a response id
        self.background = PendingUsage()  # background responses whose usage comes with a retrieve
        self.tracing = settings.otel.enabled  # a span per call: mint its ids, send its traceparent upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/")
        door = DOORS.get(path)
        if door is not None and scope["method"] == "POST":
            await self._call(scope, receive, send, door, path)
        elif path == "/v1/models" and scope["method"] in ("GET", "HEAD"):
            await send_json(send, 200, orjson.dumps(self._models()))
        elif path.startswith(MODELS_PREFIX) and scope["method"] in ("GET", "HEAD"):
            await self._model(send, path[len(MODELS_PREFIX) :])
        elif path.startswith(response_ids.PREFIX):
            await self._by_response_id(scope, receive, send, path)
        elif door is not None or path == "/v1/models" or path.startswith(MODELS_PREFIX):
            await _send_error(
                send,
                APIError(405, f"Method {scope['method']} is not allowed on {path}", code="method_not_allowed"),
                door=door,
            )
        else:
            await _send_error(
                send,
                APIError(
                    404,
                    f"Unknown endpoint {path}; this gateway serves "
                    "/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/messages, "
                    "/v1/messages/count_tokens, /v1/responses, /v1/models and /v1/models/{id}",
                    code="unknown_url",
                ),
            )

    async def _by_response_id(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        async def read() -> bytes:
            return await _read_body(scope, receive, self.settings.max_body_bytes)

        await by_id.serve(self, scope, send, path, read, _Disconnected)

    def _models(self) -> dict[str, Any]:
        return {"object": "list", "data": [_model_entry(d) for d in self.registry.all()]}

    async def _model(self, send: Send, name: str) -> None:
        dep = self.registry.get(name)
        if dep is None:
            await _send_error(send, _unknown_model(name))
        else:
            await send_json(send, 200, orjson.dumps(_model_entry(dep)))

    async def _call(self, scope: Scope, receive: Receive, send: Send, door: FrontDoor, path: str) -> None:
        t0 = time.perf_counter()
        call_type = door.call_type
        wall = time.time()
        try:
            raw = await _read_body(scope, receive, self.settings.max_body_bytes)
            body = parse_body(raw, self.response_owners.chained if door.api == "responses" else None)
        except _Disconnected:
            return
        except APIError as exc:
            await _send_error(send, exc, door=door)
            return
        dep = self.registry.get(body["model"])  # memory only: the registry reloads in the background
        if dep is None:
            await _send_error(send, _unknown_model(body["model"]), door=door)
            return
        headers = dict(scope["headers"])
        passed = {k.decode(): headers[k].decode("latin-1") for k in PASSED_HEADERS if k in headers}
        client = scope.get("client")
        meta, tags = request_metadata(body, headers.get(TAGS_HEADER))
        rec = CallRecord(
            id=new_record_id(wall),
            deployment=dep,
            model=body["model"],
            call_type=call_type,
            start=wall,
            stream=body.get("stream") is True,
            client_ip=client[0] if client else None,
            request_body=body,
            metadata=meta,
            tags=tags,
            session_id=session_id(headers, body),
            max_stored_body_bytes=self.settings.max_stored_body_bytes,
        )
        if self.tracing:  # the caller's trace (if any) goes on through this call's span, and upstream
            rec.trace = start_trace(headers.get(b"traceparent"))
            passed["traceparent"] = rec.trace.traceparent()
        call = Call(rec=rec, body=body, t0=t0, send=send, door=door, api=door.api, passed_headers=passed or None)
        watch = _Watch(None, call=call)
        watch.task = asyncio.create_task(_watch_disconnect(receive, asyncio.current_task(), watch))
        rejected = True  # until the call goes to its upstream: refused by the gateway itself
        try:
            check_json_content_type(headers.get(b"content-type"))
            call.hop = self.hops.next_hop(headers.get(HOP_HEADER))
            if self.keys is not None:
                call.virtual_key = self._authorise(headers, rec)
            if self.user_budgets is not None and "user" in body:
                try:
                    self.user_budgets.check(body["user"], rec)
                except LimitExceeded as exc:
                    raise APIError(
                        429, exc.message, "rate_limit_error", code="budget_exceeded", retry_after=exc.retry_after
                    ) from None
            check_kind(dep, call_type)
            api = upstream_api(dep)
            routed = bool(dep.upstreams)  # several upstreams: each attempt picks its own API
            pair = pair_for(door, api, dep, path) if api != door.api and not routed else None
            if door.api == "chat":
                check_fields(body, call_type)
            else:
                check_stream(body)
            if routed:
                rejected = False
                query = scope.get("query_string")
                # a continued response goes to the upstream that holds the one it continues
                holder = self.response_owners.upstream(body.get("previous_response_id"), dep.name)
                await serve_routed(
                    call, dep, self.router, self.registry, self.upstream, self.cache, self.limits, path, query, holder
                )
            else:
                base = self.registry.base_url(dep)
                if base is None:
                    raise APIError(
                        503,
                        f"The embedded model '{dep.model}' is still starting; try again in a few seconds.",
                        "service_unavailable",
                        code="model_loading",
                    )
                rejected = False
                if pair is None:
                    url = base + path[3:]
                    if query := scope.get("query_string"):  # e.g. Claude Code's ?beta=true, passed on as sent
                        url += "?" + query.decode("latin-1")
                    await relay(call, self.upstream, url, dep, self.cache, path, limits_for(dep, self.limits))
                else:
                    await relay_translated(call, pair, self.upstream, base, dep, limits_for(dep, self.limits))
            watch.done = True
        except APIError as exc:
            watch.done = True
            if rejected:
                exc = settle_rejection(self.rejects, exc, rec)
            call.fail(exc.status, exc.message)
            rec.response_body = exc.body()
            rec.request_id = rec.request_id or rec.id
            if not call.started and not call.disconnected:
                await _send_error(send, exc, rec.request_id, door)
        except (asyncio.CancelledError, OSError) as exc:
            watch.done = True
            if isinstance(exc, asyncio.CancelledError) and not watch.disconnected:
                call.fail(499, "cancelled: the server is shutting down")
                call.finish()
                await self.recorder.submit(rec)
                raise
            call.fail(499, "client_disconnected")
            if isinstance(exc, asyncio.CancelledError):
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
        except Exception as exc:  # a bug of ours: answer and record it rather than lose the call
            watch.done = True
            log.exception("unexpected error relaying %s to %s", path, dep.name)
            call.fail(500, f"internal error: {type(exc).__name__}")
            err = APIError(500, "The gateway failed to handle this request.", "server_error", code="internal_error")
            rec.response_body = err.body()
            try:
                if not call.started:
                    await _send_error(send, err, rec.request_id or rec.id, door)
                elif not call.complete:
                    call.complete = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:  # the connection is gone too
                pass
        finally:
            if watch.task is not None:
                if call.complete:
                    # The server wakes the watcher's receive() itself once the response is sent
                    # (uvicorn does, as do httpx's and Starlette's test transports): let it end
                    # quietly. Cancelling it instead cost an exception, a traceback and a cycle of
                    # garbage per call. Any other server: cancelled after it had its chance.
                    asyncio.get_running_loop().call_soon(_cancel_if_pending, watch.task)
                else:
                    watch.task.cancel()
        if call.disconnected and rec.status == "success":  # the answer came after the client left
            call.fail(499, "client_disconnected")
        try:
            call.finish()
        except Exception:  # keep the record, whatever the accounting bug
            log.exception("could not settle the record of %s", rec.id)
        # A translated call's answer id is ours, not the upstream's: nothing to route back to.
        translated = rec.upstream_request is not None
        if (
            door.api == "responses" and isinstance(rec.response_body, dict) and not translated
        ):  # streamed: set by finish()
            self.response_owners.note(rec.response_body.get("id"), dep.name, rec.served_by)
            self.background.created(rec)
        await self.recorder.submit(rec)

    def _authorise(self, headers: dict[bytes, bytes], rec: CallRecord) -> str:
        """require_keys: a valid, unrevoked virtual key within its limits (returned), or a
        401/429."""
        assert self.keys is not None
        auth = headers.get(b"authorization", b"").decode("latin-1")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        key = key or headers.get(b"x-api-key", b"").decode("latin-1").strip()  # Anthropic's SDKs
        vk = self.keys.lookup(key) if key else None
        if vk is None:
            raise APIError(
                401,
                "Incorrect API key provided."
                if key
                else "You didn't provide an API key: send 'Authorization: Bearer <key>'.",
                code="invalid_api_key",
            )
        rec.key_alias = vk.alias
        try:
            self.keys.check_limits(vk, rec)  # holds the call's estimate until its record is stored
        except LimitExceeded as exc:
            raise APIError(
                429, exc.message, "rate_limit_error", code="rate_limit_exceeded", retry_after=exc.retry_after
            ) from None
        return key


async def _watch_disconnect(receive: Receive, task: asyncio.Task[Any] | None, watch: _Watch) -> None:
    """Note a client's hang-up: a streamed call is cancelled (so is its upstream request); a
    non-streamed one reads its answer to the end for the real usage (the upstream bills it anyway)."""
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
    except asyncio.CancelledError:
        return  # the call is over; ending quietly leaves no exception and traceback to collect
    call = watch.call
    complete = call is not None and call.complete
    if not watch.done and not complete and task is not None and not task.done():
        watch.disconnected = True
        if call is not None and not call.rec.stream:
            # A non-streamed answer is billed whole whether or not anyone reads it: let the call
            # read it (the relay's upstream timeout bounds the wait; no more retries), so the
            # record holds its real usage, and send it to nobody. Streams are cancelled: that
            # stops the generation upstream.
            call.disconnected = True
            call.t_gone = time.perf_counter()
            return
        task.cancel()


def _cancel_if_pending(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise APIError(
                413, f"The request body is larger than the limit of {limit} bytes.", code="request_too_large"
            )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise APIError(
                413, f"The request body is larger than the limit of {limit} bytes.", code="request_too_large"
            )
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _model_entry(dep: Deployment) -> dict[str, Any]:
    return {"id": dep.name, "object": "model", "created": 0, "owned_by": dep.provider}


def _unknown_model(name: str) -> APIError:
    return APIError(
        404,
        f"The model '{name}' does not exist on this gateway; GET /v1/models lists the deployments.",
        param="model",
        code="model_not_found",
    )


async def _send_error(send: Send, exc: APIError, request_id: str | None = None, door: FrontDoor | None = None) -> None:
    headers = JSON_HEADERS
    if exc.retry_after is not None:
        headers = [*JSON_HEADERS, (b"retry-after", str(exc.retry_after).encode())]
    if request_id is not None:  # the call has a record: the id that finds it
        headers = [*headers, request_id_header(request_id)]
    shape = door.error_body if door is not None else error_body
    await send_json(send, exc.status, orjson.dumps(shape(exc.message, exc.type, exc.param, exc.code)), headers)
