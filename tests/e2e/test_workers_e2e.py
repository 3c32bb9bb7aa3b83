"""``modelmeter serve --workers 2``: two processes share the port and the database; every call is
recorded exactly once, both workers serve calls, and the usage API's totals equal the raw records —
on SQLite and on PostgreSQL.

The load (aiohttp, many keep-alive connections, a unique tag per call) and the record checks are
the reliability suite's (``tests/reliability/support.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, sqlite_url, wait_for
from tests.reliability.support import (
    chat_or_fail,
    check_against_records,
    count_records,
    fresh_pg_database,
    run_load,
    wait_until_stored,
)

pytestmark = pytest.mark.timeout(120)

N = 600
CONCURRENCY = 64  # connections: enough that both workers accept some


def deployments(base_url: str) -> list[dict[str, Any]]:
    """A priced chat model, and one whose upstream always answers 500 (no retries: one call each)."""
    return [
        {"name": "chat", "model": "gpt-4o-mini", "provider": "openai", "api_base": base_url},
        {"name": "fail", "model": "fail-500", "provider": "acme", "api_base": base_url, "max_retries": 0},
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(the server's database URL, what the support readers take: a SQLite path or the PG URL)."""
    if request.param == "sqlite":
        path = tmp_path / "modelmeter.db"
        yield sqlite_url(path), str(path)
    else:
        with fresh_pg_database() as url:
            yield url, url


def split_of(seen: set[int]) -> tuple[int, int] | None:
    """Two of the seen counts, both above 0, that add up to N: one per worker."""
    return next(
        ((a, b) for a, b in itertools.combinations_with_replacement(sorted(seen), 2) if a > 0 and a + b == N), None
    )


def per_worker_written(server: ServerProcess) -> set[int]:
    """``records_written`` of ``/readyz`` is per process; each poll is a new connection, which either
    worker may accept. Polls until two values sum to N (one per worker): counts only grow, so a
    stale reading taken before a worker's last batch was counted cannot complete such a pair."""
    seen: set[int] = set()

    def both_seen() -> bool:
        status, body = server.api("GET", "/readyz")
        assert status == 200, body
        seen.add(int(body["records_written"]))
        return split_of(seen) is not None

    with contextlib.suppress(TimeoutError):  # the caller's assertion shows what was seen
        wait_for(both_seen, timeout=15, interval=0.01, message="a records_written of each worker")
    return seen


def test_two_workers_record_every_call_once(
    fake_upstream: FakeUpstream, make_config: Any, start_server: Any, database: tuple[str, str], tmp_path: Path
) -> None:
    url, db = database
    config = make_config(deployments=deployments(fake_upstream.base_url), database=url)
    # MODELMETER_HOME holds a PostgreSQL server's spool: keep it to this test.
    server = start_server(config, args=("--workers", "2"), env={"MODELMETER_HOME": str(tmp_path / "home")})
    # /healthz answers once the first worker is up; a load started then would keep its
    # connections on that worker alone.
    try:
        wait_for(
            lambda: server.stderr.count("Application startup complete.") >= 2,
            timeout=30,
            message="both workers started",
        )
    except TimeoutError:  # show what the workers said (a CI run once timed out here)
        raise AssertionError(f"both workers did not start within 30 s:\n{server.stderr[-4000:]}") from None

    load = asyncio.run(run_load(server.url, N, chat_or_fail, concurrency=CONCURRENCY, run_id="workers"))
    fails = sum(chat_or_fail(i).deployment == "fail" for i in range(N))
    assert Counter(o.status for o in load.outcomes) == {200: N - fails, 500: fails}, load.summary()
    assert all(o.answered for o in load.outcomes), load.summary()

    wait_until_stored(db, N, timeout=30)
    # One record per call (matched by tag), the status the client saw, rollups == records, and the
    # usage API's requests / succeeded / failed / tokens / spend == sums of the raw records.
    facts = check_against_records(server, db, load)
    assert facts == {"records": N, "by_deployment": {"chat": N - fails, "fail": fails}, "succeeded": N - fails}

    seen = per_worker_written(server)
    assert split_of(seen), f"no /readyz records_written of each worker adding up to {N}: {sorted(seen)}"

    assert server.stop() == 0, server.stderr[-3000:]
    # Each worker ran its lifespan shutdown (which drains its recorder), and nothing crashed.
    assert server.stderr.count("Application shutdown complete.") == 2, server.stderr[-3000:]
    assert "Traceback" not in server.stderr, server.stderr[-3000:]
    assert count_records(db) == N  # the shutdown wrote nothing twice
    # A spool lives beside the SQLite file, or in MODELMETER_HOME for PostgreSQL.
    assert not list(tmp_path.rglob("*.jsonl")), "records left in a spool"
