"""Issue 11 items 8 and 9, as a user meets them: ``bench`` and ``eval`` run as subprocesses against a
real ``modelmeter serve``, with and without the admin key, and the live URL they print."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from modelmeter.bench.server import usage_url, window_for
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ADMIN_KEY, ServerProcess, run_cli

MODEL = "gpt-4o-mini"
NO_KEY = {"MODELMETER_ADMIN_KEY": ""}  # the README's default: the key is not exported


@pytest.fixture
def server(
    fake_upstream: FakeUpstream, make_config: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> ServerProcess:
    return start_server(make_config(deployments=[{"name": MODEL, "api_base": fake_upstream.base_url}]))


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_bench_without_the_admin_key_says_so_and_keeps_the_usage_url(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = run_cli(
        "bench",
        "--base-url",
        server.base_url,
        "--model",
        MODEL,
        "-n",
        "4",
        "-c",
        "2",
        "--output-tokens",
        "3",
        "--json",
        str(out),
        env=NO_KEY,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    # one line on stderr with the cause and both fixes
    [note] = lines_with(done.stderr, "401")
    assert "MODELMETER_ADMIN_KEY" in note and "--admin-key" in note and server.url in note
    url = f"{server.url}/models/{MODEL}?tag=bench:{report['run_id']}&window=1h&live=1"
    assert report["usage_url"] == url and report["server_access"] == "locked"
    assert f"Watch this run live: {url}" in done.stderr and f"Usage tab for this run: {url}" in done.stdout
    assert report["server_comparison"] is None and "Client vs server" not in done.stdout
    assert lines_with(done.stdout, "401") and "MODELMETER_ADMIN_KEY" in done.stdout
    # the requests themselves were metered all the same (stored a moment after they were answered)
    tag = f"bench:{report['run_id']}"
    server.wait_for_records(MODEL, 4, tag=tag)
    assert len(server.records(MODEL, tag=tag, limit=10)) == 4


def test_bench_with_the_admin_key_option(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = run_cli(
        "bench",
        "--base-url",
        server.base_url,
        "--model",
        MODEL,
        "-n",
        "4",
        "-c",
        "2",
        "--output-tokens",
        "3",
        "--json",
        str(out),
        "--admin-key",
        ADMIN_KEY,
        env=NO_KEY,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["server_access"] == "open" and report["server_comparison"]["agree"]
    assert "401" not in done.stderr and "Client vs server" in done.stdout
    status, stored = server.api("GET", f"/api/runs/{report['run_id']}")
    assert status == 200 and stored["report"]["completed"] == 4


def test_bench_with_a_wrong_admin_key(server: ServerProcess) -> None:
    done = run_cli(
        "bench",
        "--base-url",
        server.base_url,
        "--model",
        MODEL,
        "-n",
        "2",
        "-q",
        "--admin-key",
        "not-the-key",
        env=NO_KEY,
    )
    assert done.returncode == 0, done.stderr
    [note] = lines_with(done.stdout, "401")
    assert "--admin-key" in note and "Usage tab for this run:" in done.stdout


def test_eval_without_the_admin_key_does_not_call_the_server_foreign(server: ServerProcess, tmp_path: Path) -> None:
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text('{"prompt": "Count", "expected": "tok0", "match": "contains"}\n')
    out = tmp_path / "e.json"
    done = run_cli(
        "eval",
        "--base-url",
        server.base_url,
        "--model",
        MODEL,
        "--dataset",
        str(dataset),
        "--max-tokens",
        "2",
        "--json",
        str(out),
        env=NO_KEY,
    )
    assert done.returncode == 0, done.stderr
    ev = json.loads(out.read_text())
    assert "not a modelmeter server" not in done.stdout + done.stderr and "not one here" not in done.stdout
    [note] = lines_with(done.stderr, "401")
    assert "MODELMETER_ADMIN_KEY" in note and "--admin-key" in note
    url = f"{server.url}/models/{MODEL}?tag=eval:{ev['run_id']}&window=1h&live=1"
    assert ev["usage_url"] == url and f"Usage tab for this run: {url}" in done.stdout
    assert "needs the admin key" in done.stdout  # why there is no cost


def test_the_live_url_window_holds_the_run(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    # a 2-hour duration (cut short by -n 2): the 1h window would not hold it
    done = run_cli(
        "bench",
        "--base-url",
        server.base_url,
        "--model",
        MODEL,
        "-n",
        "2",
        "--duration",
        "2h",
        "--json",
        str(out),
        "-q",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["usage_url"] == f"{server.url}/models/{MODEL}?tag=bench:{report['run_id']}&window=24h&live=1"


def test_window_for() -> None:
    assert [window_for(s) for s in (None, 30, 3600, 3601, 86400, 86401, 7 * 86400)] == [
        "1h",
        "1h",
        "1h",
        "24h",
        "24h",
        "7d",
        "7d",
    ]
    assert usage_url("http://h:1", "a b", "bench:x", 60) == "http://h:1/models/a%20b?tag=bench:x&window=1h&live=1"


def test_bench_list_and_compare_without_the_admin_key(server: ServerProcess, tmp_path: Path) -> None:
    ids = []
    for _ in range(2):
        out = tmp_path / "r.json"
        done = run_cli("bench", "--base-url", server.base_url, "--model", MODEL, "-n", "2", "-q", "--json", str(out))
        assert done.returncode == 0, done.stderr
        ids.append(json.loads(out.read_text())["run_id"])
    done = run_cli("bench", "list", "--url", server.url, "--json", env=NO_KEY)
    assert done.returncode == 0, done.stderr
    [note] = lines_with(done.stderr, "401")
    assert "MODELMETER_ADMIN_KEY" in note and "--admin-key" in note and "saved on this machine" in note
    assert {r["id"] for r in json.loads(done.stdout)} == set(ids)  # from the local files
    done = run_cli("bench", "list", "--url", server.url, "--json", "--admin-key", ADMIN_KEY, env=NO_KEY)
    assert done.returncode == 0 and "401" not in done.stderr
    assert {r["id"] for r in json.loads(done.stdout)} == set(ids)  # from the server
    done = run_cli("bench", "compare", *ids, "--url", server.url, "--json", env=NO_KEY)
    assert done.returncode == 0, done.stderr
    assert len(lines_with(done.stderr, "401")) == 1 and json.loads(done.stdout)["a"] == ids[0]


def test_expected_seconds_of_a_run() -> None:
    from modelmeter.bench.load import Shape
    from modelmeter.bench.runner import BenchConfig

    def secs(**shape: float) -> float | None:
        return BenchConfig(model="m", run_id="r", shape=Shape(**shape)).expected_seconds()  # type: ignore[arg-type]

    assert secs(requests=10) is None and secs(duration=7200) == 7200
    assert secs(requests=1000, rate=0.1) == 10_000 and window_for(secs(requests=1000, rate=0.1)) == "24h"
    assert secs(requests=1000, rate=0.1, duration=60) == 60
