"""The real agent CLIs, run as a person runs them, pointed at a gateway (tests/e2e/test_agents_cli_e2e.py).

Claude Code and Codex come from ``package-lock.json`` beside this file (``npm ci --prefix
tests/agent_clis``, done by scripts/test). Each runs with a clean environment (no key or setting of
the machine's leaks in), its home in a temporary folder, and everything that would reach another
host switched off, so a run works offline and reaches only the gateway.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

BIN = Path(__file__).resolve().parent / "node_modules" / ".bin"
CLAUDE = BIN / "claude"
CODEX = BIN / "codex"
TIMEOUT_S = 120

# Claude Code: no telemetry, error reports, auto-updates or other nonessential traffic.
CLAUDE_OFFLINE = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
}


def installed() -> None:
    """Fail with the fix when the CLIs are missing (scripts/test installs them)."""
    missing = [p.name for p in (CLAUDE, CODEX) if not p.exists()]
    assert not missing, f"{missing} not installed: run npm ci --prefix tests/agent_clis"


def _base_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}


def run_claude(
    gateway_url: str,
    prompt: str,
    *,
    model: str,
    home: Path,
    api_key: str | None = None,
    auth_token: str | None = None,
    session_id: str | None = None,
    args: tuple[str, ...] = (),
    env_extra: dict[str, str] | None = None,
    timeout: float = TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """``claude -p PROMPT --model MODEL [--session-id UUID] [ARGS]`` with ``ANTHROPIC_BASE_URL`` at the gateway; the
    key goes as ``x-api-key`` (``ANTHROPIC_API_KEY``) or ``Authorization: Bearer`` (``ANTHROPIC_AUTH_TOKEN``)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**_base_env(home), **CLAUDE_OFFLINE, "ANTHROPIC_BASE_URL": gateway_url, **(env_extra or {})}
    if api_key is not None:
        env["ANTHROPIC_API_KEY"] = api_key
    if auth_token is not None:
        env["ANTHROPIC_AUTH_TOKEN"] = auth_token
    cmd = [str(CLAUDE), "-p", prompt, "--model", model, *(["--session-id", session_id] if session_id else []), *args]
    return subprocess.run(
        cmd, env=env, cwd=home, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def codex_config(gateway_base_url: str, model: str) -> str:
    """The ``config.toml`` that sends Codex to the gateway (the README shows the same lines)."""
    return f"""model = "{model}"
model_provider = "modelmeter"

[model_providers.modelmeter]
name = "modelmeter"
base_url = "{gateway_base_url}"
env_key = "MODELMETER_API_KEY"
wire_api = "responses"

[analytics]
enabled = false
"""


def run_codex(
    gateway_base_url: str, prompt: str, *, model: str, home: Path, api_key: str
) -> subprocess.CompletedProcess[str]:
    """``codex exec PROMPT`` with ``CODEX_HOME/config.toml`` naming the gateway as its provider."""
    codex_home, workdir = home / "codex", home / "work"
    codex_home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_config(gateway_base_url, model))
    env = {**_base_env(home), "CODEX_HOME": str(codex_home), "MODELMETER_API_KEY": api_key}
    cmd = [str(CODEX), "exec", "--skip-git-repo-check", prompt]
    return subprocess.run(
        cmd, env=env, cwd=workdir, capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL
    )
