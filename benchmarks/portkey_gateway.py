"""Portkey's open-source gateway (``@portkey-ai/gateway``, Node) for benchmarks/overhead.py.

Installed from the npm registry into benchmarks/portkey/node_modules with ``npm ci`` (the version
is pinned by benchmarks/portkey/package.json and package-lock.json), never fetched at run time
from a CDN. It stores nothing; it is pointed at the mock upstream per request, as its docs say for
an OpenAI-compatible server: ``x-portkey-provider: openai`` and ``x-portkey-custom-host`` (the
upstream's base URL, to which it appends ``/chat/completions``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DIR = Path(__file__).resolve().parent / "portkey"
SERVER = DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def command(port: int) -> list[str] | str:
    """The command that serves Portkey's gateway on ``port``, or why it cannot run here."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "Portkey's gateway skipped: node/npm not found (apt-get install -y nodejs npm)"
    if not SERVER.exists():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0 or not SERVER.exists():
            return f"Portkey's gateway skipped: npm ci in {DIR} failed: {done.stderr.strip()[-300:]}"
    # --headless: no console UI (it would keep request logs in memory)
    return [node, str(SERVER), f"--port={port}", "--headless"]


def headers(upstream_base: str) -> dict[str, str]:
    """Per-request routing to an OpenAI-compatible upstream at ``upstream_base`` (…/v1)."""
    return {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": upstream_base,
        "Authorization": "Bearer sk-mock",
    }
