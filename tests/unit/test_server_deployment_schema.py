"""The deployment schema and the Deployment dataclass describe the same settings (a field added to one
and not the other would be refused, or silently dropped), with the same defaults."""

from __future__ import annotations

import dataclasses

import pytest

from modelmeter.config import ConfigError, Deployment
from modelmeter.deployment_schema import DeploymentSpec, check_name


def test_schema_and_dataclass_have_the_same_fields_and_defaults() -> None:
    spec = DeploymentSpec.model_fields
    dep = {f.name: f for f in dataclasses.fields(Deployment) if f.name != "source"}
    assert set(spec) == set(dep)
    for name, field in dep.items():
        if field.default is not dataclasses.MISSING and spec[name].default is not None:
            assert spec[name].default == field.default, name


@pytest.mark.parametrize(
    "name",
    [
        "a/usage",
        "a/requests",
        "a/events",
        "a/usage/timeseries",
        "a/requests/export",
        "a/../b",
        "..",
        "a//b",
        "/a",
        "a/",
        "a\x00b",
        "a\tb",
        "a" * 129,
        "",
    ],
)
def test_route_like_and_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name)
    with pytest.raises(ConfigError, match="'name' must be"):
        Deployment.from_mapping({"name": name, "api_base": "http://x"})


@pytest.mark.parametrize(
    "name", ["usage", "events", "meta-llama/Llama-3.1-8B:fp8@v1+x", "org/usage-model", "a.b_c", "a" * 128]
)
def test_ordinary_names_are_kept(name: str) -> None:
    assert Deployment.from_mapping({"name": name, "api_base": "http://x"}).name == name


def test_every_problem_is_named_with_its_field() -> None:
    with pytest.raises(ConfigError) as caught:
        Deployment.from_mapping(
            {"name": "m", "api_base": "http://x", "timeout": float("nan"), "max_retries": 1_000_000, "bogus": 1}
        )
    message = str(caught.value)
    assert message.startswith("deployment 'm': ")
    for part in (
        "'timeout' must be a number of seconds",
        "'max_retries' must be a whole number from 0 to 10",
        "unknown deployment field 'bogus'",
    ):
        assert part in message, message
