"""Suite-wide rules. With MODELMETER_NO_SKIP=1 (set by scripts/test, so in CI) a skipped test fails
the run: a browser or PostgreSQL test that did not run proves nothing."""

from __future__ import annotations

import os

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("MODELMETER_NO_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        names = ", ".join(getattr(r, "nodeid", "?") for r in skipped[:10])
        if reporter:
            reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped with MODELMETER_NO_SKIP=1: {names}",
                                red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
