"""Which upstream of a routed deployment a stored response's calls go to (routing/holders.py): the
one remembered as its holder while in service, else one routed as usual that speaks Responses."""

from __future__ import annotations

import random
from typing import Any

import pytest

from modelmeter.apis.response_ids import ResponseOwners
from modelmeter.config import Deployment
from modelmeter.gateway.errors import APIError
from modelmeter.routing.holders import by_id_target
from modelmeter.routing.pool import Pool


class _Registry:
    """The registry's lookups that referenced upstreams use."""

    def __init__(self, *deps: Deployment) -> None:
        self._deps = {d.name: d for d in deps}

    def get(self, name: str) -> Deployment | None:
        return self._deps.get(name)

    def base_url(self, dep: Deployment) -> str | None:
        return dep.api_base


def routed(*ups: dict[str, Any]) -> Deployment:
    return Deployment.from_mapping({"name": "m", "model": "x", "api": "responses", "upstreams": list(ups)})


def test_owners_remember_the_upstream_per_deployment() -> None:
    owners = ResponseOwners(limit=2)
    owners.note("resp_1", "m", "b")
    owners.note("resp_2", "plain")
    assert owners.get("resp_1") == "m" and owners.upstream("resp_1", "m") == "b"
    assert owners.upstream("resp_1", "other") is None  # another deployment's id: not its upstream
    assert owners.upstream("resp_2", "plain") is None and owners.upstream(None, "m") is None
    assert owners.chained({"previous_response_id": "resp_1"}) == "m"
    owners.note("resp_3", "m", "a")  # the oldest is forgotten
    assert owners.get("resp_1") is None and owners.upstream("resp_3", "m") == "a"


def test_holder_while_in_service_else_routed_as_usual() -> None:
    dep = routed({"name": "a", "api_base": "http://a/v1"}, {"name": "b", "api_base": "http://b/v1"})
    pool = Pool(dep, rng=random.Random(3))
    registry: Any = _Registry(dep)
    for _ in range(20):
        assert by_id_target(pool, "b", registry)[1:] == ("http://b/v1", "b")
    assert {by_id_target(pool, None, registry)[2] for _ in range(50)} == {"a", "b"}  # unknown: weighted
    assert {by_id_target(pool, "gone", registry)[2] for _ in range(50)} == {"a", "b"}  # no such label now
    pool.breakers[1].failure("HTTP 401", 401)  # out until reset
    assert {by_id_target(pool, "b", registry)[2] for _ in range(20)} == {"a"}
    pool.breakers[0].failure("HTTP 401", 401)
    with pytest.raises(APIError) as err:
        by_id_target(pool, "b", registry)
    assert err.value.status == 503


def test_only_upstreams_that_speak_responses_and_referenced_deployments() -> None:
    other = Deployment.from_mapping({"name": "o", "model": "y", "api": "responses", "api_base": "http://o/v1"})
    dep = routed(
        {"name": "chat", "api_base": "http://c/v1", "api": "chat"},
        {"name": "ref", "deployment": "o"},
    )
    pool = Pool(dep, rng=random.Random(1))
    registry: Any = _Registry(dep, other)
    for _ in range(20):
        udep, base, label = by_id_target(pool, None, registry)
        assert (base, label, udep.name, udep.model) == ("http://o/v1", "ref", "m", "y")
    assert by_id_target(pool, "chat", registry)[2] == "chat"  # the holder, whatever its API
