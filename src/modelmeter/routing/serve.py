"""A call to a routed deployment: attempts over its upstreams until one answers.

Each attempt relays through the same code as a one-upstream call (``relay`` / ``relay_translated``)
with the upstream's own Deployment, so its URL, key, API (translated when it differs from the
client's) and price are the upstream's. ``Call.route`` lets the relay decide a fallback before
anything reaches the client; after that the attempt's answer, good or bad, is the call's.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from modelmeter.apis.routing import upstream_api
from modelmeter.gateway.errors import APIError
from modelmeter.gateway.relay import Call, relay
from modelmeter.gateway.translated import pair_for, relay_translated
from modelmeter.routing.attempt import Attempt, Fallback, Try
from modelmeter.routing.pool import Pool, Router
from modelmeter.upstreams.limits import ResponseLimits, limits_for

if TYPE_CHECKING:
    from modelmeter.config import Deployment
    from modelmeter.gateway.cache import ResponseCache
    from modelmeter.registry import Registry
    from modelmeter.upstreams.client import UpstreamClient


def sticky_key(call: Call) -> str | None:
    """The client's prompt-cache key, else its session: the same upstream keeps its cache warm."""
    key = call.body.get("prompt_cache_key")
    if isinstance(key, str) and key:
        return key
    return call.rec.session_id


async def serve_routed(
    call: Call,
    dep: Deployment,
    router: Router,
    registry: Registry,
    client: UpstreamClient,
    cache: ResponseCache | None,
    limits: ResponseLimits,
    path: str,
    query: bytes | None,
    holder: str | None = None,
) -> None:
    """``holder``: the label of the upstream that holds the response this call continues
    (``previous_response_id``): the first attempt goes there while it is in service."""
    pool = router.pool(dep)
    rec = call.rec
    attempts: list[Attempt] = []
    rec.attempts = attempts
    tried: set[int] = set()
    key = sticky_key(call)
    deadline = call.t0 + (dep.attempts_timeout or dep.timeout)
    limit = dep.max_retries + 1  # attempts in all

    def more() -> bool:
        return len(attempts) < limit and pool.pick(tried) is not None

    skipped: APIError | None = None
    passed = call.passed_headers  # a translated attempt replaces them: the next one starts afresh
    first = _holder_first(pool, holder)
    while True:
        i = pool.pick(tried, key) if first is None else first
        first = None
        if i is None:
            break
        tried.add(i)
        up = pool.upstreams[i]
        udep, base = up.dep, up.dep.api_base
        try:
            if up.ref is not None:  # another deployment of this gateway, as it is now
                udep, base = referenced(up.ref, dep, registry)
            api = upstream_api(udep)
            pair = pair_for(call.door, api, udep, path) if api != call.door.api else None
        except APIError as exc:  # this upstream cannot take this call: another may
            skipped = exc
            continue
        breaker = pool.breakers[i]
        probe = breaker.claim()
        attempt = Attempt(up.label, time.perf_counter())
        attempts.append(attempt)
        call.route = Try(attempt, breaker, deadline, dep.fallback_on, more, partial(router.changed, pool, i))
        rec.deployment = udep  # priced at the serving upstream's rates, its api_base on the record
        rec.served_by = up.label
        call.api, call.passed_headers, rec.upstream_request = call.door.api, passed, None
        try:
            assert base is not None
            if pair is None:
                url = base + path[3:]
                if query:
                    url += "?" + query.decode("latin-1")
                await relay(call, client, url, udep, cache, path, limits_for(udep, limits))
                if rec.cache_hit:  # answered from the response cache: no upstream was tried
                    rec.attempts, rec.served_by = None, None
            else:
                await relay_translated(call, pair, client, base, udep, limits_for(udep, limits))
            return
        except Fallback:
            rec.served_by = None
            continue
        except APIError as exc:
            attempt.error = attempt.error or exc.message
            if attempt.status is None:
                rec.served_by = None  # nobody answered: the gateway's own error went to the client
            raise
        finally:
            attempt.latency_ms = (time.perf_counter() - attempt.t0) * 1000.0
            breaker.release(probe)
            call.route = None
            if len(attempts) > 1:
                rec.retries = len(attempts) - 1
    raise none_left(pool, dep, skipped if not attempts else None)


def _holder_first(pool: Pool, label: str | None) -> int | None:
    """The holder's index if it is in service (not cooling nor out), else None (the call is routed
    as usual). Its max_concurrency is not applied: no other upstream could continue the response."""
    i = pool.index_of(label) if label is not None else None
    return i if i is not None and pool.breakers[i].available() else None


def referenced(name: str, dep: Deployment, registry: Registry) -> tuple[Deployment, str]:
    """The deployment an upstream names, under the routed deployment's name (the record's), at its
    own URL, model, API, key and price; an APIError when it cannot serve (the next one is tried)."""
    other = registry.get(name)
    base = registry.base_url(other) if other is not None else None
    if other is None or other.upstreams or base is None:
        why = "does not exist" if other is None else "has upstreams of its own" if other.upstreams else "is starting"
        raise APIError(
            503, f"The fallback deployment '{name}' {why}.", "service_unavailable", code="no_upstream_available"
        )
    return replace(other, name=dep.name), base


def none_left(pool: Pool, dep: Deployment, skipped: APIError | None) -> APIError:
    if skipped is not None:
        return skipped
    return APIError(
        503,
        f"No upstream of '{dep.name}' is available now (cooling down, out, or at its max_concurrency).",
        "service_unavailable",
        code="no_upstream_available",
        retry_after=pool.retry_after(),
    )
