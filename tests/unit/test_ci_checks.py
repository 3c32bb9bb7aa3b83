"""Issue 11 item 24: ./scripts/test (and so CI) runs ruff check, ruff format --check and mypy
before pytest, fails when they fail, and uses pinned versions of both tools."""

from __future__ import annotations

import tomllib

from tests.helpers import ROOT


def steps() -> list[str]:
    return [
        line.strip()
        for line in (ROOT / "scripts" / "test").read_text().splitlines()
        if line.strip().startswith(("python -m", "exit"))
    ]


def test_checks_run_before_pytest_and_decide_the_exit_status() -> None:
    run = steps()
    order = [
        next(i for i, s in enumerate(run) if s.startswith(cmd))
        for cmd in (
            "python -m ruff check src tests",
            "python -m ruff format --check",
            "python -m mypy",
            "python -m pytest",
        )
    ]
    assert order == sorted(order), run
    assert run[-1] == 'exit "$checks"'  # after the tests: a lint or type failure fails the run
    assert all(s.endswith("|| checks=1") for s in run if s.startswith(("python -m ruff", "python -m mypy")))


def test_formatter_is_configured_and_tools_are_pinned() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "format" in config["tool"]["ruff"]
    pins = {r.split("==")[0]: r for r in config["project"]["optional-dependencies"]["test"]}
    assert "==" in pins["ruff"] and "==" in pins["mypy"]
    assert (ROOT / ".ci" / "run").read_text().count("./scripts/test") == 1
