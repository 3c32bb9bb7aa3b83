"""``POST /api/runs``, ``GET /api/runs``, ``GET /api/runs/{id}`` and the local run files."""

from __future__ import annotations

from pathlib import Path

from modelmeter.bench import runs
from tests.helpers import running_app

DEPS = [{"name": "gpt", "model": "gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1"}]


def _run(run_id: str, created_us: int, kind: str = "bench", model: str = "gpt") -> dict[str, object]:
    return {
        "id": run_id,
        "kind": kind,
        "deployment": model,
        "created_us": created_us,
        "created": "ignored",
        "params": {"load": "8 requests"},
        "report": {"completed": 8},
    }


async def test_store_list_and_get(tmp_path: Path) -> None:
    async with running_app(f"sqlite:///{tmp_path}/mm.db", DEPS) as h:
        for i, kind in enumerate(["bench", "eval", "bench"]):
            res = await h.request("POST", "/api/runs", _run(f"r{i}", 1_000_000 * (i + 1), kind))
            assert res.status == 201, res.body
        assert res.json()["created"] == "1970-01-01T00:00:03.000000Z"
        assert res.json()["report"] == {"completed": 8} and res.json()["params"] == {"load": "8 requests"}
        res = await h.request("POST", "/api/runs", _run("r1", 5))
        assert res.status == 409 and res.json()["error"]["code"] == "run_exists"

        res = await h.request("GET", "/api/runs")
        assert [r["id"] for r in res.json()["data"]] == ["r2", "r1", "r0"]
        res = await h.request("GET", "/api/runs", query="kind=bench&limit=1")
        body = res.json()
        assert [r["id"] for r in body["data"]] == ["r2"] and body["next_before"] == 3_000_000
        res = await h.request("GET", "/api/runs", query=f"kind=bench&limit=1&before={body['next_before']}")
        assert [r["id"] for r in res.json()["data"]] == ["r0"]
        res = await h.request("GET", "/api/runs", query="deployment=other")
        assert res.json()["data"] == []

        res = await h.request("GET", "/api/runs/r1")
        assert res.status == 200 and res.json()["kind"] == "eval"
        res = await h.request("GET", "/api/runs/nope")
        assert res.status == 404 and res.json()["error"]["code"] == "run_not_found"


async def test_validation(tmp_path: Path) -> None:
    async with running_app(f"sqlite:///{tmp_path}/mm.db", DEPS) as h:
        for bad in (
            {"id": "has space", "kind": "bench"},
            {"id": "ok", "kind": "other"},
            {"kind": "bench"},
            {"id": "ok", "kind": "bench", "params": [1]},
        ):
            res = await h.request("POST", "/api/runs", bad)
            assert res.status == 400, (bad, res.body)
            assert res.json()["error"]["type"] == "invalid_request_error"
        res = await h.request("POST", "/api/runs", {"id": "now", "kind": "eval"})
        assert res.status == 201 and res.json()["created_us"] > 1_600_000_000_000_000


def test_local_files(bench_home: Path) -> None:
    assert runs.list_local() == [] and runs.load_local("x") is None
    a = runs.make_run("a", "bench", "gpt", {"load": "x"}, {"completed": 1}, created=100.0)
    b = runs.make_run("b", "eval", "gpt", {}, None, created=200.0)
    assert runs.save_local(a) == bench_home / "runs" / "a.json"
    runs.save_local(b)
    assert [r["id"] for r in runs.list_local()] == ["b", "a"]
    assert [r["id"] for r in runs.list_local(kind="bench")] == ["a"]
    assert runs.load_local("a") == a and runs.load_local("../etc/passwd") is None
    assert a["created"] == "1970-01-01T00:01:40.000000Z"
    rid = runs.new_run_id()
    assert runs.RUN_ID.match(rid) and len(rid) == 20
