"""Issue 11 item 15: an embedded model's worker URL (a random loopback port that skips metering)
is never shown; the API's ``api_base`` and ``deploy list`` say "embedded"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import ServerProcess, run_cli

EMBED = "multilingual-e5-small"  # the lighter embedded model: its worker starts in seconds


@pytest.mark.model
def test_embedded_deployment_shows_embedded_not_its_worker_url(
    make_config: Any, fake_upstream: Any, tmp_path: Any
) -> None:
    config = make_config(
        deployments=[
            {"name": EMBED, "provider": "local"},
            {"name": "remote", "model": "gpt-4o-mini", "api_base": fake_upstream.base_url},
        ],
        local_threads=1,
    )
    with ServerProcess(config, log_dir=tmp_path / "server", startup_timeout=180) as server:
        status, listed = server.api("GET", "/api/deployments")
        assert status == 200
        by_name = {d["name"]: d for d in listed["data"]}
        assert by_name[EMBED]["api_base"] == "embedded" and by_name[EMBED]["local"] is True
        assert by_name["remote"]["api_base"] == fake_upstream.base_url
        status, one = server.api("GET", f"/api/deployments/{EMBED}")
        assert status == 200 and one["api_base"] == "embedded"
        assert by_name[EMBED]["reachable"] is True  # the worker runs; only its URL is hidden

        done = run_cli("deploy", "list", "--url", server.url)
        assert done.returncode == 0, done.stderr
        [line] = [ln for ln in done.stdout.splitlines() if ln.startswith(EMBED)]
        assert line.rstrip().endswith("embedded")
        fake_port = fake_upstream.base_url.split(":")[2]
        loopback = [ln for ln in done.stdout.splitlines() if "127.0.0.1:" in ln and fake_port not in ln]
        assert loopback == [], loopback
        done = run_cli("deploy", "list", "--url", server.url, "--json")
        assert {d["name"]: d["api_base"] for d in json.loads(done.stdout)}[EMBED] == "embedded"
