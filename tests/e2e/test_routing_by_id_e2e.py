"""Stored responses behind a routed deployment, end to end (the real server, the openai SDK, two
fake Responses upstreams that each know only their own ids and refuse a previous_response_id they
do not hold, as real upstreams do): retrieve, input_items, cancel and delete go to the upstream that
answered the create call; a continued response (previous_response_id) goes there too; when that
upstream is taken out, or the id is unknown here, the call is routed as any other."""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, sqlite_url, wait_for, write_config

pytestmark = pytest.mark.timeout(180)
STRICT = {"FAKE_STRICT_PREVIOUS": "1"}


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with (
        FakeUpstream(env={**STRICT, "FAKE_RESPONSE_PREFIX": "a"}) as a,
        FakeUpstream(env={**STRICT, "FAKE_RESPONSE_PREFIX": "b"}) as b,
    ):
        yield a, b


def routed(a: str, b: str, names: tuple[str, str] = ("a", "b"), **more: Any) -> dict[str, Any]:
    return {
        "name": "r",
        "model": "fake-model",
        "api": "responses",
        "upstreams": [{"name": names[0], "api_base": a}, {"name": names[1], "api_base": b}],
        **more,
    }


def serve(tmp_path: Path, deployment: dict[str, Any]) -> ServerProcess:
    cfg = write_config(tmp_path / "mm.toml", database=sqlite_url(tmp_path / "mm.db"), deployments=[deployment])
    return ServerProcess(cfg)


def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=20)


def by_id_paths(fake: FakeUpstream) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in fake.request_log() if e["path"].startswith("/v1/responses/")]


def holder_of(rid: str) -> str:
    return "a" if rid.startswith("resp_a") else "b"


def test_by_id_calls_go_to_the_upstream_that_answered(tmp_path: Path, fakes: Any) -> None:
    a, b = fakes
    a.reset()
    b.reset()
    with serve(tmp_path, routed(a.base_url, b.base_url)) as server:
        oa = client(server)
        made = [oa.responses.create(model="r", input=f"question {i}", max_output_tokens=3) for i in range(16)]
        streamed = oa.responses.create(model="r", input="streamed", max_output_tokens=3, stream=True)
        done = [e for e in streamed if e.type == "response.completed"]
        made.append(done[0].response)
        holders = Counter(holder_of(m.id) for m in made)
        assert set(holders) == {"a", "b"}, holders  # both answered some (weights 1:1)
        for m in made:
            assert oa.responses.retrieve(m.id).id == m.id  # the other upstream would say 404
            items = oa.responses.input_items.list(m.id)
            assert items.data[0].content[0].text.startswith(("question", "streamed"))  # type: ignore[union-attr]
            assert oa.responses.cancel(m.id).id == m.id
            assert oa.responses.with_raw_response.delete(m.id).http_response.json()["deleted"] is True
            with pytest.raises(openai.NotFoundError):  # deleted where it was
                oa.responses.retrieve(m.id)
        # each upstream saw the by-id calls on its own ids only, five per id
        for fake, name in ((a, "a"), (b, "b")):
            paths = by_id_paths(fake)
            assert len(paths) == 5 * holders[name]
            assert all(p.split("/")[3].startswith(f"resp_{name}") for p in paths), paths
        # the records say which upstream each went to; creates and by-id calls agree
        creates = server.wait_for_records("r", len(made), call_type="responses")
        gets = server.wait_for_records("r", 2 * len(made), call_type="responses_get")
        for row in gets:
            full = server.record(row["id"])
            rid = full["metadata"]["response_id"]
            assert full["served_by"] == holder_of(rid) and full["http_status"] in (200, 404)
            assert full["api_base"] == (a.base_url if holder_of(rid) == "a" else b.base_url)
            assert full["attempts"] is None  # not a routed call: the split leaves it out
        for row in creates:
            full = server.record(row["id"])
            if isinstance(full["response"], dict) and "id" in full["response"]:  # (a stream's: its events)
                assert full["served_by"] == holder_of(full["response"]["id"])


def test_a_continued_response_sticks_to_its_holder(tmp_path: Path, fakes: Any) -> None:
    a, b = fakes
    with serve(tmp_path, routed(a.base_url, b.base_url)) as server:
        oa = client(server)
        chains = []
        for c in range(4):
            first = oa.responses.create(model="r", input=f"chain {c}", max_output_tokens=2)
            prev = first.id
            for turn in range(5):
                stream = turn % 2 == 1
                if stream:
                    events = oa.responses.create(
                        model="r", input=f"turn {turn}", previous_response_id=prev, max_output_tokens=2, stream=True
                    )
                    nxt = next(e.response for e in events if e.type == "response.completed")
                else:
                    nxt = oa.responses.create(model="r", input=f"turn {turn}", previous_response_id=prev)
                assert holder_of(nxt.id) == holder_of(first.id)  # else a 400 from the other upstream
                prev = nxt.id
            chains.append(holder_of(first.id))
        # a create without a model continues where its chain began, on the same upstream
        raw = orjson.dumps({"input": "no model", "previous_response_id": prev, "max_output_tokens": 2})
        req = urllib.request.Request(
            f"{server.base_url}/responses", raw, {"content-type": "application/json", "authorization": "Bearer x"}
        )
        with urllib.request.urlopen(req, timeout=20) as resp:
            assert holder_of(orjson.loads(resp.read())["id"]) == chains[-1]
        rows = server.wait_for_records("r", 4 * 6 + 1, call_type="responses")
        assert all(r["status"] == "success" for r in rows)
        assert all(server.record(r["id"])["retries"] == 0 for r in rows)  # first attempt, no fallback


def test_holder_taken_out_or_unknown_id_is_routed_as_usual(tmp_path: Path, fakes: Any) -> None:
    a, _ = fakes
    with FakeUpstream(env={**STRICT, "FAKE_RESPONSE_PREFIX": "c"}) as c:
        # "gone" first: the deployment's own URL is its URL, where an unrouted by-id call would go
        dep = routed(c.base_url, a.base_url, ("gone", "live"), cooldown_after=1, cooldown=600)
        with serve(tmp_path, dep) as server:
            oa = client(server)
            held = None
            for i in range(40):
                m = oa.responses.create(model="r", input=f"q{i}", max_output_tokens=2)
                if m.id.startswith("resp_c"):
                    held = m.id
                    break
            assert held is not None
            c.__exit__()  # upstream "gone" goes away; calls routed to it fail over to "live"
            health = wait_for(lambda: _cooled(server, oa), 30, message="upstream 'gone' cooling")
            assert health["gone"]["state"] == "cooling"
            with pytest.raises(openai.NotFoundError):  # "live" does not hold it, and says so
                oa.responses.retrieve(held)
            with pytest.raises(openai.BadRequestError) as refused:  # nor can it continue it
                oa.responses.create(model="r", input="more", previous_response_id=held)
            assert refused.value.code == "previous_response_not_found"
            # an id made on "live" without the gateway: unknown here, routed as usual (to "live")
            direct = urllib.request.Request(
                f"{a.base_url}/responses",
                orjson.dumps({"model": "fake-model", "input": "direct"}),
                {"content-type": "application/json"},
            )
            with urllib.request.urlopen(direct, timeout=10) as resp:
                unknown = orjson.loads(resp.read())["id"]
            assert oa.responses.retrieve(unknown).id == unknown
            gets = server.wait_for_records("r", 2, call_type="responses_get")
            assert sorted((server.record(r["id"])["served_by"], r["http_status"]) for r in gets) == [
                ("live", 200),
                ("live", 404),
            ]
            (continued,) = server.wait_for_records("r", 1, call_type="responses", status="error")
            assert server.record(continued["id"])["served_by"] == "live" and continued["http_status"] == 400


def _cooled(server: ServerProcess, oa: openai.OpenAI) -> dict[str, Any] | None:
    oa.responses.create(model="r", input="nudge", max_output_tokens=1)  # may go to "gone" and fail over
    status, body = server.api("GET", "/api/upstreams")
    assert status == 200, body
    ups = {u["name"]: u for d in body["data"] if d["deployment"] == "r" for u in d["upstreams"]}
    return ups if ups["gone"]["state"] == "cooling" else None
