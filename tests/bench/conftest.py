"""Every bench test keeps its remembered runs in its own MODELMETER_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def bench_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "mm-home"
    monkeypatch.setenv("MODELMETER_HOME", str(home))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return home
