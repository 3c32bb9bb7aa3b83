"""The upstream of a routed deployment that holds a stored response (Responses API).

A response id lives only on the upstream that answered its create call: the by-id calls on it
(GET/DELETE /v1/responses/{id}, input_items, cancel) go there, and so does a create call that
continues it (``previous_response_id``), since the other upstreams do not know the id. Which upstream
answered is remembered per process beside the owning deployment (``apis.response_ids``). When it is
unknown (another process, a restart) or taken out (cooling, out), the call is routed as any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.apis.routing import upstream_api
from modelmeter.gateway.errors import APIError
from modelmeter.routing.pool import Pool
from modelmeter.routing.serve import none_left, referenced

if TYPE_CHECKING:
    from modelmeter.config import Deployment
    from modelmeter.registry import Registry


def by_id_target(pool: Pool, label: str | None, registry: Registry) -> tuple[Deployment, str, str]:
    """(the upstream's deployment, its base URL, its label) for a by-id call: the holder when it
    is known and not taken out, else an available upstream that speaks the Responses API."""
    dep = pool.dep
    i = pool.index_of(label) if label is not None else None
    skipped: set[int] = set()
    if i is not None and pool.breakers[i].available():
        try:
            return _resolved(pool, i, registry)
        except APIError:  # a referenced deployment that cannot serve now
            skipped.add(i)
    while (i := pool.pick(skipped)) is not None:
        skipped.add(i)
        try:
            udep, base, name = _resolved(pool, i, registry)
        except APIError:  # a referenced deployment that cannot serve: another may
            continue
        if upstream_api(udep) == "responses":
            return udep, base, name
    raise none_left(pool, dep, None)


def _resolved(pool: Pool, i: int, registry: Registry) -> tuple[Deployment, str, str]:
    up = pool.upstreams[i]
    if up.ref is not None:
        udep, url = referenced(up.ref, pool.dep, registry)
        return udep, url, up.label
    own = up.dep.api_base
    assert own is not None  # every upstream of a routed deployment has one (config.py)
    return up.dep, own, up.label
