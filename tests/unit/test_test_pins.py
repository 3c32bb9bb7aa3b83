"""Issue 11 item 19: the suite's own dependencies are pinned, so a fresh clone in a fresh venv
resolves what the suite passed with (pytest 9.2 with schemathesis 4.32.5 broke test_fuzz)."""

from __future__ import annotations

import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tests.helpers import ROOT

CONSTRAINTS = ROOT / "requirements" / "test-constraints.txt"


def pinned_test_extra() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["optional-dependencies"]["test"]]


def constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            [spec] = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_direct_test_dependencies_are_exact_pins() -> None:
    for req in pinned_test_extra():
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{req} is not an exact pin"
    names = {canonicalize_name(r.name) for r in pinned_test_extra()}
    assert {"pytest", "schemathesis", "ruff", "mypy"} <= names


def test_constraints_cover_the_test_extra_and_the_runtime() -> None:
    pins = constraints()
    for req in pinned_test_extra():
        name = canonicalize_name(req.name)
        assert name in pins and req.specifier.contains(pins[name]), f"{req} vs constraints {pins.get(name)}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins and req.specifier.contains(pins[name]), f"{req} vs constraints {pins.get(name)}"
    assert "modelmeter" not in pins  # the project itself is installed from the checkout


def test_scripts_test_installs_with_the_constraints() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    assert "-c requirements/test-constraints.txt -e '.[test]'" in script


def test_this_environment_runs_the_pinned_test_tools() -> None:
    # what scripts/test installed is what the pins say (a drifted environment is caught here)
    pins = constraints()
    for req in pinned_test_extra():
        assert metadata.version(req.name) == pins[canonicalize_name(req.name)], req.name
