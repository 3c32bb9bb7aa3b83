"""Routing units (issue 15): the selector's split, stickiness, priorities, and the breaker's clock."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from modelmeter.config import ConfigError, Deployment
from modelmeter.routing.attempt import Attempt, Try, matches
from modelmeter.routing.pool import Pool, Router


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def routed(*ups: dict[str, Any], **extra: Any) -> Deployment:
    return Deployment.from_mapping({"name": "m", "model": "x", "upstreams": list(ups), **extra})


def test_weighted_split_within_two_percent_over_ten_thousand() -> None:
    dep = routed(
        {"name": "a", "api_base": "http://a", "weight": 5},
        {"name": "b", "api_base": "http://b", "weight": 3},
        {"name": "c", "api_base": "http://c", "weight": 2},
    )
    pool = Pool(dep, rng=random.Random(15))
    counts = Counter(pool.upstreams[pool.pick()].label for _ in range(10_000))  # type: ignore[index]
    for label, share in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        assert abs(counts[label] / 10_000 - share) <= 0.02, counts


def test_priority_falls_to_the_next_level_only_when_the_first_is_tried_or_out() -> None:
    dep = routed(
        {"name": "local", "api_base": "http://a"},
        {"name": "hosted", "api_base": "http://b", "priority": 1},
    )
    pool = Pool(dep, rng=random.Random(1))
    assert {pool.pick() for _ in range(100)} == {0}
    assert pool.pick({0}) == 1
    assert pool.pick({0, 1}) is None
    pool.breakers[0].failure("HTTP 402", 402)
    assert pool.pick() == 1


def test_max_concurrency_saturates_to_the_fallback() -> None:
    dep = routed(
        {"name": "local", "api_base": "http://a", "max_concurrency": 2},
        {"name": "hosted", "api_base": "http://b", "priority": 1},
    )
    pool = Pool(dep)
    pool.breakers[0].claim()
    assert pool.pick() == 0
    pool.breakers[0].claim()
    assert pool.pick() == 1
    pool.breakers[0].release(False)
    assert pool.pick() == 0


def test_sticky_key_keeps_one_upstream_and_spreads_keys_by_weight() -> None:
    dep = routed({"name": "a", "api_base": "http://a", "weight": 3}, {"name": "b", "api_base": "http://b"})
    pool = Pool(dep, rng=random.Random(2))
    assert len({pool.pick(key="session-1") for _ in range(50)}) == 1
    counts = Counter(pool.pick(key=f"s{i}") for i in range(4000))
    assert abs(counts[0] / 4000 - 0.75) <= 0.03, counts
    # the other upstream goes away: its keys move, the others stay
    before = {f"s{i}": pool.pick(key=f"s{i}") for i in range(200)}
    pool.breakers[1].failure("HTTP 401", 401)
    after = {k: pool.pick(key=k) for k in before}
    assert all(after[k] == 0 for k in before)


def test_least_busy_picks_the_fewest_in_flight() -> None:
    dep = routed({"name": "a", "api_base": "http://a"}, {"name": "b", "api_base": "http://b"}, routing="least_busy")
    pool = Pool(dep, rng=random.Random(3))
    pool.breakers[0].claim()
    assert {pool.pick() for _ in range(20)} == {1}
    pool.breakers[1].claim()
    pool.breakers[1].claim()
    assert pool.pick() == 0


def test_cooled_after_n_failures_then_one_probe_after_t() -> None:
    clock = Clock()
    dep = routed(
        {"name": "a", "api_base": "http://a"},
        {"name": "b", "api_base": "http://b"},
        cooldown_after=3,
        cooldown_window="10s",
        cooldown="30s",
    )
    pool = Pool(dep, clock=clock)
    a = pool.breakers[0]
    assert not a.failure("HTTP 500")
    assert not a.failure("HTTP 500")
    assert a.failure("HTTP 500")  # the third within the window
    assert a.shown() == "cooling" and not pool.usable(0)
    assert {pool.pick() for _ in range(20)} == {1}
    clock.now += 29.9
    assert not pool.usable(0)
    clock.now += 0.2
    assert pool.usable(0) and a.shown() == "probing"
    assert a.claim() is True  # the probe
    assert not pool.usable(0)  # one probe at a time
    a.failure("HTTP 500")  # the probe failed: cooling again for T
    assert a.shown() == "cooling" and a.until == pytest.approx(clock.now + 30)
    clock.now += 30
    assert a.claim() is True
    a.success()
    a.release(True)
    assert a.shown() == "healthy" and pool.usable(0)


def test_failures_outside_the_window_do_not_add_up() -> None:
    clock = Clock()
    pool = Pool(routed({"api_base": "http://a"}, cooldown_after=2, cooldown_window="10s"), clock=clock)
    b = pool.breakers[0]
    b.failure("x")
    clock.now += 11
    assert not b.failure("x")
    assert b.shown() == "healthy"


def test_402_takes_it_out_until_reset() -> None:
    clock = Clock()
    pool = Pool(routed({"api_base": "http://a"}), clock=clock)
    b = pool.breakers[0]
    assert b.failure("HTTP 402", 402)
    clock.now += 10**6
    assert b.shown() == "out" and not pool.usable(0) and pool.pick() is None
    b.reset()
    assert pool.usable(0)


def test_try_decides_fallbacks_by_rule_and_budget() -> None:
    clock = Clock()
    pool = Pool(routed({"api_base": "http://a"}, fallback_on=["connect", 503]), clock=clock)
    changed: list[int] = []
    t = Try(
        Attempt("a", 0.0), pool.breakers[0], float("inf"), pool.dep.fallback_on, lambda: True, lambda: changed.append(1)
    )
    assert t.answered(503) and not t.attempt.served
    assert not t.answered(500)  # not in this deployment's list: passed through
    assert t.error("connect", "refused")
    assert not t.error("timeout", "slow")
    assert t.answered(402)  # an upstream that is out always moves on
    assert changed  # the breaker changed state (shared through Redis when configured)
    no_more = Try(Attempt("a", 0.0), pool.breakers[0], float("inf"), pool.dep.fallback_on, lambda: False, lambda: None)
    assert not no_more.answered(503)
    assert matches(("5xx",), 502, None) and not matches(("5xx",), 429, None) and matches(("429",), 429, None)


def test_router_keeps_breakers_across_equal_reloads() -> None:
    router = Router()
    one = routed({"api_base": "http://a"}, {"api_base": "http://b"})
    pool = router.pool(one)
    pool.breakers[0].failure("HTTP 402", 402)
    again = routed({"api_base": "http://a"}, {"api_base": "http://b"})  # the registry's reload
    assert router.pool(again) is pool and pool.breakers[0].state == "out"
    changed = routed({"api_base": "http://a"}, {"api_base": "http://c"})
    assert router.pool(changed) is not pool


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"upstreams": []}, "non-empty list"),
        ({"upstreams": [{"api_base": "http://a", "weight": -1}]}, "upstream 1: 'weight' must be a positive number"),
        ({"upstreams": [{"api_base": "http://a", "priority": "high"}]}, "'priority' must be a whole number"),
        ({"upstreams": [{"api_base": "http://a", "colour": 1}]}, "unknown upstream field 'colour'"),
        ({"upstreams": [{"model": "y"}]}, "needs an 'api_base'"),
        ({"api_base": "http://a", "routing": "weighted"}, "only apply with [[deployments.upstreams]]"),
        ({"upstreams": [{"api_base": "http://a"}], "routing": "random"}, "'routing' must be one of"),
        ({"upstreams": [{"api_base": "http://a"}], "fallback_on": ["6xx"]}, "'6xx' is not a status"),
        ({"upstreams": [{"api_base": "http://a", "name": "x"}, {"api_base": "http://b", "name": "x"}]}, "used twice"),
        ({"upstreams": [{"api_base": "http://a", "api_key_env": "sk-live key"}]}, "'api_key_env' must be"),
        ({"upstreams": [{"deployment": "other", "model": "x"}]}, "'deployment' brings its own model"),
        ({"upstreams": [{"api_base": "http://a"}], "cooldown": 10**400}, "'cooldown' must be"),
        ({"upstreams": [{"api_base": "http://a", "weight": 10**400}]}, "upstream 1:"),
        ({"upstreams": [{"deployment": "other"}]}, "at least one upstream needs an 'api_base'"),
        ({"upstreams": [{"api_base": "http://a"}, {"deployment": "m"}]}, "cannot be the deployment itself"),
    ],
)
def test_bad_upstreams_are_refused_clearly(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Deployment.from_mapping({"name": "m", **definition})
    assert message in str(err.value)
    assert "sk-live" not in str(err.value)


def test_one_upstream_deployment_is_unchanged_and_upstreams_inherit_its_fields() -> None:
    plain = Deployment.from_mapping({"name": "m", "api_base": "http://a/v1/", "api_key_env": "K"})
    assert plain.upstreams == () and "upstreams" not in plain.public()
    dep = routed(
        {"api_base": "http://u:secret@a:8000/v1"},
        {"api_base": "https://hosted/v1", "model": "big", "api_key_env": "HOSTED", "price": {"input": 1, "output": 2}},
        api_key_env="LOCAL",
    )
    local, hosted = dep.upstreams
    assert local.label == "a:8000" and local.dep.model == "x" and local.dep.api_key_env == "LOCAL"
    assert hosted.dep.model == "big" and hosted.dep.api_key_env == "HOSTED" and hosted.dep.price is not None
    assert "secret" not in str(dep.public())
    assert Deployment.from_mapping(dep.public()).upstreams[1] == hosted


def test_readme_routing_configs_load(tmp_path: Any) -> None:
    from pathlib import Path

    from modelmeter.config import load_settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [
        b.split("```")[0] for b in readme.split("```toml\n")[1:] if "[[deployments.upstreams]]" in b.split("```")[0]
    ]
    assert len(blocks) == 2
    for i, block in enumerate(blocks):
        path = tmp_path / f"c{i}.toml"
        path.write_text(block)
        (dep,) = load_settings(path).deployments
        assert len(dep.upstreams) == 2
    assert dep.upstreams[1].label == "hosted" and dep.upstreams[1].dep.api_key_env == "OPENAI_API_KEY"
