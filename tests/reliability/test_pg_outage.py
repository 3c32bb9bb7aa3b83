"""PostgreSQL goes away for 20 s under steady load, then comes back: no call fails, no record is lost.

The database is a PRIVATE PostgreSQL cluster made for this test (``initdb`` + ``pg_ctl`` on a free
loopback port, as the ``postgres`` user when we are root): the machine's shared cluster is used by
other tests and people and must never be stopped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pwd
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.reliability.support import (
    PrivatePostgres,
    check_against_records,
    count_records,
    deployments,
    metric,
    postgres_bin,
    run_load,
    successes_only,
    wait_until_stored,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

RATE = 100  # requests per second
DURATION_S = 40
OUTAGE_AT_S = 10
OUTAGE_S = 20
RECOVERY_LIMIT_S = 30


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run initdb as")
    pg = PrivatePostgres(bindir)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.cleanup()


def _sample(server: Any, t0: float) -> dict[str, Any]:
    status, ready = server.api("GET", "/readyz", timeout=10)
    mstatus, text = server.api("GET", "/metrics", timeout=10)
    assert mstatus == 200, text
    return {
        "t": round(time.monotonic() - t0, 1),
        "ready": status,
        "database": ready["database"],
        "failing": ready["recorder"]["database_failing"],
        "queued": ready["recorder"]["queued"],
        "spooled": ready["recorder"]["spooled"],
        "written": ready["records_written"],
        "m_spooled": metric(text, "modelmeter_recorder_spooled_records"),
        "m_queue": metric(text, "modelmeter_recorder_queue_depth"),
    }


def _api_reads(server: Any, n: int = 60) -> Counter[int]:
    """``n`` usage queries at once: they spread over the API's worker threads (each has its own
    database connection)."""

    def one(_: int) -> int:
        return int(server.api("GET", "/api/deployments/chat/usage?window=1h", timeout=20)[0])

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        return Counter(pool.map(one, range(n)))


def test_postgres_outage_loses_nothing(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Any, tmp_path: Path, private_pg: PrivatePostgres
) -> None:
    config = make_config(deployments=deployments(fake_upstream.base_url), database=private_pg.url)
    home = tmp_path / "home"  # the spool of a PostgreSQL server: MODELMETER_HOME/spool
    server = start_server(config, env={"MODELMETER_HOME": str(home)})
    n = RATE * DURATION_S
    during: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    marks: dict[str, float] = {}
    reads: dict[str, Counter[int]] = {}

    async def scenario() -> Any:
        t0 = marks["t0"] = time.monotonic()
        task = asyncio.create_task(
            run_load(
                server.url,
                n,
                successes_only,
                concurrency=200,
                rate=RATE,
                run_id="outage",
                max_seconds=DURATION_S + 30,
                timeout=30,
            )
        )
        await asyncio.sleep(OUTAGE_AT_S / 2)
        reads["before"] = await asyncio.to_thread(_api_reads, server)  # every API thread has a connection
        await asyncio.sleep(max(0.0, t0 + OUTAGE_AT_S - time.monotonic()))
        await asyncio.to_thread(private_pg.stop, "fast")
        marks["down"] = time.monotonic()
        while time.monotonic() - marks["down"] < OUTAGE_S:
            during.append(await asyncio.to_thread(_sample, server, t0))
            if len(during) == 10:
                reads["during"] = await asyncio.to_thread(_api_reads, server, 10)
            await asyncio.sleep(0.5)
        await asyncio.to_thread(private_pg.start)
        marks["up"] = time.monotonic()
        # Each of those connections died with the restart: the API must not fail on any of them.
        reads["after"] = await asyncio.to_thread(_api_reads, server)
        while not task.done():  # the load goes on: does the backlog drain meanwhile?
            sample = await asyncio.to_thread(_sample, server, t0)
            sample["stored"] = await asyncio.to_thread(count_records, private_pg.url)
            after.append(sample)
            await asyncio.sleep(0.5)
        marks["load_done"] = time.monotonic()
        return await task

    load = asyncio.run(scenario())

    # The gateway kept answering, database or not: every call succeeded, during the outage too.
    assert len(load.outcomes) == n, load.summary()
    failed = [o for o in load.outcomes if not o.ok]
    assert not failed, (len(failed), failed[:5])
    in_outage = [o for o in load.outcomes if marks["down"] <= o.sent_at and o.done_at <= marks["up"]]
    assert len(in_outage) >= RATE * OUTAGE_S * 0.8, len(in_outage)

    # /readyz told the truth: database unreachable, not ready, a backlog growing; /metrics too.
    late = [s for s in during if s["t"] - (marks["down"] - marks["t0"]) > 2]
    assert late and all(s["ready"] == 503 and s["database"].startswith("unreachable") for s in late), during
    assert all(s["failing"] for s in late), during
    backlog = [s["queued"] + s["spooled"] for s in late]
    assert backlog[-1] > RATE * (OUTAGE_S - 5), during  # ~all calls of the outage are waiting
    # ... and counted as rows: a batch of 5 records is 5, not batch_size (500), in the backlog
    assert max(s["queued"] for s in late) < RATE * 2, during
    assert max(max(s["m_spooled"], s["m_queue"]) for s in late) > 0, during
    assert max(s["m_spooled"] for s in late) > 0, "nothing went to the spool file"

    assert reads["before"] == {200: 60} and reads["after"] == {200: 60}, reads

    # When it is back, the backlog is stored while the load goes on (not only at the next lull).
    before_up = sum(1 for o in load.outcomes if o.done_at <= marks["up"])
    caught_up = next((s for s in after if s["spooled"] == 0 and s["stored"] >= before_up), None)
    assert caught_up is not None, ("the backlog waited for the load to end", before_up, after)
    catch_up_s = caught_up["t"] - (marks["up"] - marks["t0"])
    assert catch_up_s < RECOVERY_LIMIT_S

    # And in the end everything lands: the count is exact, one record per call, rollups agree.
    ok = len(load.ok)
    wait_until_stored(private_pg.url, ok, RECOVERY_LIMIT_S)
    stored_at = time.monotonic()
    facts = check_against_records(server, private_pg.url, load)
    assert facts["records"] == ok == n
    status, ready = server.api("GET", "/readyz")
    assert status == 200 and ready["recorder"]["queued"] == ready["recorder"]["spooled"] == 0, ready
    assert not list((home / "spool").glob("*.jsonl")), "spool files left behind"
    assert server.stop() == 0

    print(
        f"\n[pg outage] {load.summary()}, calls_during_outage={len(in_outage)}, "
        f"peak_backlog={max(backlog)}, peak_spooled={max(s['m_spooled'] for s in late)}, "
        f"backlog_stored_s_after_restart={round(catch_up_s, 1)} (load still running), "
        f"all_{facts['records']}_stored_s_after_load_end={round(stored_at - marks['load_done'], 1)}, "
        f"usage_api_statuses={ {k: dict(v) for k, v in reads.items()} }"
    )
    print("  during:", [(s["t"], s["ready"], s["queued"], s["spooled"]) for s in during[::6]])
    print("  after: ", [(s["t"], s["queued"], s["spooled"], s["stored"]) for s in after[::2]])
