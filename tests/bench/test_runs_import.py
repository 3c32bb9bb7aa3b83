"""``modelmeter runs import FILE`` and ``POST /api/runs/import``: a run exported from one server is
stored on another with the same figures; a malformed file, another format version or a taken id
is refused with a clear error (CLI: one line, non-zero exit; API: 400 JSON) and nothing is stored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelmeter.runs import runfile
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ADMIN_KEY, ServerProcess, run_cli, sqlite_url

MODEL = "gpt-4o-mini"
ENV = {"MODELMETER_ADMIN_KEY": ADMIN_KEY}


@pytest.fixture
def servers(
    fake_upstream: FakeUpstream,
    make_config: Callable[..., Path],
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
) -> tuple[ServerProcess, ServerProcess]:
    """Two modelmeter instances, each with its own database."""
    deps = [{"name": MODEL, "api_base": fake_upstream.base_url}]
    a = start_server(make_config(deployments=deps))
    b = start_server(make_config(deployments=deps, database=sqlite_url(tmp_path / "other.db")))
    return a, b


def finished_run(server: ServerProcess, requests: int = 12) -> dict[str, Any]:
    body = {"kind": "bench", "model": MODEL, "requests": requests, "concurrency": 3, "output_tokens": 5}
    status, run = server.api("POST", "/api/runs", body)
    assert status == 201, run
    deadline = time.monotonic() + 30
    while run["report"]["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        run = server.api("GET", f"/api/runs/{run['id']}")[1]
    assert run["report"]["status"] == "done", run["report"]
    return dict(run)


def cli(server: ServerProcess, *args: str) -> Any:
    return run_cli("runs", *args, "--url", server.url, env=ENV)


def run_ids(server: ServerProcess) -> list[str]:
    return [r["id"] for r in server.api("GET", "/api/runs?limit=200")[1]["data"]]


def test_export_then_import_on_another_server_gives_the_same_figures(
    servers: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    a, b = servers
    run = finished_run(a)
    assert run["report"]["latency_timeline"]["t_s"], run["report"]  # what the comparison overlays
    path = tmp_path / "run.json"
    done = cli(a, "export", run["id"], "-o", str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads(path.read_text())["format_version"] == 1

    done = cli(b, "import", str(path))
    assert done.returncode == 0, done.stderr
    assert f"Run {run['id']} imported" in done.stdout and f"/runs/{run['id']}" in done.stdout
    status, copy = b.api("GET", f"/api/runs/{run['id']}")
    assert status == 200, copy
    for field in ("id", "kind", "deployment", "created", "created_us", "params", "report"):
        assert copy[field] == run[field], field
    assert run["id"] in run_ids(b)
    # what a person reads: the same report and comparison on both servers
    shown = [cli(s, "show", run["id"]) for s in (a, b)]
    assert all(d.returncode == 0 for d in shown), [d.stderr for d in shown]
    assert shown[0].stdout == shown[1].stdout and "TTFT" in shown[0].stdout
    compared = [json.loads(cli(s, "compare", run["id"], run["id"], "--json").stdout) for s in (a, b)]
    assert compared[0] == compared[1]


def test_a_taken_id_is_refused_then_imported_as_a_copy(
    servers: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    a, _ = servers
    run = finished_run(a, requests=6)
    path = tmp_path / "run.json"
    assert cli(a, "export", run["id"], "-o", str(path)).returncode == 0
    before = run_ids(a)

    done = cli(a, "import", str(path))  # into the server it came from: its id is taken
    assert done.returncode == 2
    assert "already exists" in done.stderr and "--new-id" in done.stderr, done.stderr
    assert run_ids(a) == before

    done = cli(a, "import", str(path), "--new-id")
    assert done.returncode == 0, done.stderr
    assert "stored as a copy" in done.stdout
    (new,) = set(run_ids(a)) - set(before)
    assert new != run["id"] and new.startswith(run["id"])
    copy = a.api("GET", f"/api/runs/{new}")[1]
    assert copy["report"] == run["report"] and copy["params"]["imported_from"] == run["id"]
    original = a.api("GET", f"/api/runs/{run['id']}")[1]
    assert original == run  # not overwritten


def bad_files(run: dict[str, Any]) -> dict[str, tuple[bytes, str]]:
    """name -> (file content, what the error must say)."""
    doc = {"format": "modelmeter.run", "format_version": 1, **run}
    return {
        "not-json": (b'{"id": "x", "kind": ', "not JSON"),
        "a-list": (b"[1, 2]", "holds no run"),
        "version-2": (json.dumps({**doc, "format_version": 2}).encode(), "format version is 2"),
        "other-format": (json.dumps({**doc, "format": "other.tool"}).encode(), "not a modelmeter run export"),
        "no-id": (json.dumps({k: v for k, v in doc.items() if k != "id"}).encode(), "'id'"),
        "bad-kind": (json.dumps({**doc, "kind": "load"}).encode(), "'kind'"),
        "still-running": (
            json.dumps({**doc, "report": {**run["report"], "status": "running"}}).encode(),
            "still running",
        ),
    }


def test_bad_files_are_refused_by_the_cli_and_the_api(
    servers: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    a, b = servers
    run = finished_run(a, requests=4)
    before = run_ids(b)
    for name, (content, says) in bad_files(run).items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(content)
        done = cli(b, "import", str(path))
        assert done.returncode == 2, name
        assert done.stderr.startswith("modelmeter runs import:") and says in done.stderr, (name, done.stderr)
        status, body = b.api("POST", "/api/runs/import", content)
        assert status == 400, (name, body)
        assert says in body["error"]["message"], (name, body)
    assert run_ids(b) == before
    assert b.api("POST", "/api/runs/import", bad_files(run)["version-2"][0])[1]["error"]["code"] == (
        "unsupported_format_version"
    )
    missing = cli(b, "import", str(tmp_path / "nowhere.json"))
    assert missing.returncode != 0 and "cannot read" in missing.stderr


def test_the_api_imports_the_pages_export_and_refuses_a_taken_id(servers: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = servers
    run = finished_run(a, requests=4)
    page_export = json.dumps(run).encode()  # the Runs page's Export JSON: /api/runs/ID, no format mark
    status, stored = b.api("POST", "/api/runs/import", page_export)
    assert status == 201, stored
    assert stored["report"] == run["report"] and stored["created_us"] == run["created_us"]
    status, body = b.api("POST", "/api/runs/import", page_export)
    assert status == 409 and body["error"]["code"] == "run_exists", body
    assert "already exists" in body["error"]["message"]
    status, copy = b.api("POST", "/api/runs/import?new_id=true", page_export)
    assert status == 201 and copy["id"] != run["id"] and copy["params"]["imported_from"] == run["id"], copy
    assert b.api("POST", "/api/runs/import", page_export, auth=False)[0] == 401
    huge = b"{" + b" " * runfile.MAX_BYTES + b"}"  # refused once past the limit, not read to its end
    status, body = b.api("POST", "/api/runs/import", huge)
    assert status == 413 and "larger than" in body["error"]["message"], body
