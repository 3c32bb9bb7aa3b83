"""Load and shutdown: every /v1 call under load becomes exactly one record, and the rollups agree.

Each test starts its own ``modelmeter serve`` (a subprocess) in front of the fake upstream and drives
it with a bounded aiohttp load on loopback. Every request carries a unique tag, so the records read
back from the database are matched to the client's outcomes one for one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.reliability.support import (
    Req,
    check_against_records,
    deployments,
    fresh_pg_database,
    mixed,
    run_load,
    stored_records,
    tag_of,
)

pytestmark = pytest.mark.timeout(240)

SQLITE_REQUESTS = int(os.environ.get("MODELMETER_RELIABILITY_REQUESTS", "10000"))
PG_REQUESTS = int(os.environ.get("MODELMETER_RELIABILITY_PG_REQUESTS", "10000"))
CONCURRENCY = 200
GRACEFUL_TIMEOUT_S = 30  # uvicorn's timeout_graceful_shutdown in `modelmeter serve`


def report(name: str, facts: dict[str, Any]) -> None:
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in facts.items()))


def test_load_sqlite(fake_upstream: FakeUpstream, make_config: Any, start_server: Any) -> None:
    """10,000 calls at concurrency 200 (chat, streams, completions, embeddings, upstream 500s and
    400s) → exactly 10,000 records, each with the status the client saw, and rollups == records."""
    config = make_config(deployments=deployments(fake_upstream.base_url))
    server = start_server(config)
    load = asyncio.run(run_load(server.url, SQLITE_REQUESTS, mixed, concurrency=CONCURRENCY, run_id="sq"))
    assert len(load.outcomes) == SQLITE_REQUESTS
    assert all(o.answered for o in load.outcomes), [o for o in load.outcomes if not o.answered][:5]
    assert Counter(o.status for o in load.outcomes) == expected_statuses(SQLITE_REQUESTS)
    t0 = time.monotonic()
    db = str(make_config.db_path)
    _wait_written(server, SQLITE_REQUESTS, 30)
    lag = time.monotonic() - t0
    facts = check_against_records(server, db, load)
    assert facts["records"] == SQLITE_REQUESTS
    report("load sqlite", {**load.summary(), "writer_caught_up_s": round(lag, 2), **facts})


@pytest.mark.postgres
def test_load_postgresql(fake_upstream: FakeUpstream, make_config: Any, start_server: Any, tmp_path: Path) -> None:
    """The same load against a fresh PostgreSQL database on the shared server."""
    with fresh_pg_database() as url:
        config = make_config(deployments=deployments(fake_upstream.base_url), database=url)
        # The spool of a PostgreSQL server lives under MODELMETER_HOME: keep it to this test.
        server = start_server(config, env={"MODELMETER_HOME": str(tmp_path / "home")})
        load = asyncio.run(run_load(server.url, PG_REQUESTS, mixed, concurrency=CONCURRENCY, run_id="pg"))
        assert len(load.outcomes) == PG_REQUESTS and all(o.answered for o in load.outcomes)
        assert Counter(o.status for o in load.outcomes) == expected_statuses(PG_REQUESTS)
        t0 = time.monotonic()
        _wait_written(server, PG_REQUESTS, 30)
        lag = time.monotonic() - t0
        facts = check_against_records(server, url, load)
        assert facts["records"] == PG_REQUESTS
        report("load postgresql", {**load.summary(), "writer_caught_up_s": round(lag, 2), **facts})
        assert server.stop() == 0


@pytest.fixture
def slow_fake() -> Iterator[FakeUpstream]:
    """A fake whose answers take ~50-90 ms, so many calls are in flight when the signal comes."""
    with FakeUpstream(env={"FAKE_TTFT_MS": "40", "FAKE_ITL_MS": "8"}) as fake:
        yield fake


def test_sigterm_during_load(slow_fake: FakeUpstream, make_config: Any, start_server: Any) -> None:
    """SIGTERM in the middle of the load: the server exits 0 within the graceful timeout, every
    request that got a complete response has its record in the database, and every other request
    got a connection error (never a response without a record)."""
    slow = {"name": "slow", "model": "slow-stream", "provider": "acme", "api_base": slow_fake.base_url}
    config = make_config(deployments=[*deployments(slow_fake.base_url), slow])
    server = start_server(config)
    signalled: dict[str, float] = {}

    def slow_call(i: int) -> Req:  # 5 tokens 0.3 s apart: ~1.5 s, streamed or not
        return Req(
            "/v1/chat/completions",
            {"model": "slow", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": i % 2 == 0},
            "slow",
        )

    async def scenario() -> Any:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_load(server.url, 20_000, mixed, concurrency=100, run_id="term", stop=stop, max_seconds=60, timeout=45)
        )
        await asyncio.sleep(2.0)
        long_calls = asyncio.create_task(run_load(server.url, 20, slow_call, concurrency=20, run_id="slow"))
        await asyncio.sleep(0.5)
        signalled["at"] = time.monotonic()
        server.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(server.wait, GRACEFUL_TIMEOUT_S + 15)
        signalled["exited"] = time.monotonic()
        stop.set()
        return rc, await task, await long_calls

    rc, load, long_calls = asyncio.run(scenario())
    # The long calls were in flight when the signal came: they finished, and the server waited.
    assert len(long_calls.ok) == 20, long_calls.summary()
    load.outcomes += long_calls.outcomes
    exit_s = signalled["exited"] - signalled["at"]
    assert rc == 0, server.stderr[-3000:]
    assert 0.5 < exit_s < GRACEFUL_TIMEOUT_S, exit_s
    rows = stored_records(str(make_config.db_path))  # straight from the file: the server is gone
    by_tag = {tag_of(r): r for r in rows}
    assert len(by_tag) == len(rows), "a request was recorded twice"
    answered = load.answered
    missing = [o for o in answered if o.tag not in by_tag]
    assert not missing, f"{len(missing)} complete responses without a record: {missing[:5]}"
    wrong = [
        (o, by_tag[o.tag])
        for o in answered
        if by_tag[o.tag]["http_status"] != o.status or (by_tag[o.tag]["status"] == "success") != o.ok
    ]
    assert not wrong, wrong[:5]
    others = [o for o in load.outcomes if not o.answered]
    assert all(o.error for o in others), [o for o in others if not o.error][:5]
    in_flight = [o for o in load.outcomes if o.sent_at < signalled["at"] < (o.done_at or 1e18)]
    finished_in_flight = [o for o in in_flight if o.answered]
    recorded_unanswered = [o for o in others if o.tag in by_tag]
    unknown = set(by_tag) - {o.tag for o in load.outcomes}
    assert not unknown, sorted(unknown)[:5]
    assert len(answered) > 500, load.summary()  # the load really ran before the signal
    assert not list(Path(make_config.db_path).parent.glob(".modelmeter-spool/*.jsonl")), "records left in the spool"
    report(
        "sigterm",
        {
            **load.summary(),
            "exit_code": rc,
            "exit_after_sigterm_s": round(exit_s, 2),
            "records": len(rows),
            "in_flight_at_signal": len(in_flight),
            "of_which_completed": len(finished_in_flight),
            "connection_errors": len(others),
            "connection_errors_with_record": len(recorded_unanswered),
            "error_kinds": dict(Counter((o.error or "").split(":")[0] for o in others)),
        },
    )


def _wait_written(server: Any, n: int, timeout: float) -> None:
    """Until /readyz says ``n`` records are written and nothing is queued or spooled."""
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        status, body = server.api("GET", "/readyz")
        if (
            status == 200
            and body["records_written"] >= n
            and body["recorder"]["queued"] == 0
            and body["recorder"]["spooled"] == 0
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"the writer did not catch up in {timeout} s: {body}")


def expected_statuses(n: int) -> Counter[int]:
    return Counter({"fail-500": 500, "fail-400": 400}.get(mixed(i).deployment, 200) for i in range(n))
