"""The recorder in a process of its own (recording/remote.py, recording/child.py): every record
stored once, exactly, whether the process lives, dies mid-stream, or hangs at shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, cast

import pytest

from modelmeter.auth.keys import KeyStore
from modelmeter.config import Deployment
from modelmeter.metering.pricing import Pricer
from modelmeter.metering.record import CallRecord, finish, new_record_id
from modelmeter.metering.usage import Usage
from modelmeter.recording import priority, remote, wire
from modelmeter.recording.child import ChildConfig
from modelmeter.recording.recorder import Recorder
from modelmeter.recording.remote import RemoteRecorder
from modelmeter.recording.spool import Spool, database_key, default_spool_dir
from modelmeter.storage import slots
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.storage.records import insert_rows
from modelmeter.storage.retention import Retention

DEPS = [Deployment(name=f"d{i}", model="gpt-4o-mini", provider="openai", api_base="http://x/v1") for i in range(2)]


def rec(i: int) -> CallRecord:
    now = time.time()
    r = CallRecord(id=new_record_id(now), deployment=DEPS[i % 2], model=f"d{i % 2}", call_type="chat", start=now)
    r.end = now + 0.01
    r.latency_ms = 10.0 + i
    r.usage = Usage(100 + i, 7, 107 + i, cached_tokens=i % 5, reported=True)
    r.request_body = {"model": r.model, "messages": [{"role": "user", "content": f"call {i}"}]}
    r.response_body = {"choices": [{"message": {"content": "ok"}}]}
    r.key_alias = "team-a" if i % 3 == 0 else None
    return r


def db_dir(db: Database) -> Path:
    return Path(db.path).parent


def ledger(db: Database) -> tuple[int, int, int, int, int]:
    """Records, distinct ids, prompt tokens, cached tokens, spend: from the raw rows."""
    row = db.fetchone(
        "SELECT COUNT(*), COUNT(DISTINCT id), SUM(prompt_tokens), SUM(cached_tokens), SUM(spend_pusd) FROM records"
    )
    return tuple(int(v or 0) for v in row)  # type: ignore[return-value]


def expected(n: int) -> tuple[int, int, int, int]:
    return n, n, sum(100 + i for i in range(n)), sum(i % 5 for i in range(n))


def run(db_url: str, body: Any, queue_size: int = 20_000, finisher: bool = True, **kw: Any) -> RemoteRecorder:
    config = ChildConfig(database=db_url, queue_size=queue_size, batch_size=200, finisher_process=finisher)
    recorder = RemoteRecorder(config, **kw)

    async def main() -> None:
        recorder.start()
        await body(recorder)
        await asyncio.to_thread(recorder.stop, 20.0)

    asyncio.run(main())
    return recorder


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/r.db")
    migrate(database)
    return database


async def wait_for(cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def finisher_processes(pid: int) -> list[int]:
    """The recorder process's children: its finisher process (recording/finishing.py), if it has one."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


@pytest.mark.parametrize("finisher", [True, False], ids=["finisher-process", "finished-in-the-recorder"])
def test_records_are_stored_exactly_and_listeners_see_them(db: Database, finisher: bool) -> None:
    seen: list[dict[str, Any]] = []
    whole: list[dict[str, Any]] = []

    async def body(r: RemoteRecorder) -> None:
        assert r._proc is not None
        await wait_for(lambda: len(finisher_processes(cast(Any, r._proc).pid)) == int(finisher))
        r.add_listener(lambda rows: seen.extend(rows))
        r.add_listener(lambda rows: whole.extend(rows), whole=True)
        r.watch(["d1"])
        for i in range(3000):
            await r.submit(rec(i))
            if i % 100 == 0:
                await asyncio.sleep(0)
        await wait_for(lambda: r.depth == 0 and len(seen) == 3000)
        assert r.written == 3000 and r.problem is None

    recorder = run(db.url, body, finisher=finisher)
    count, ids, prompt, cached, spend = ledger(db)
    assert (count, ids, prompt, cached) == expected(3000)
    assert spend > 0
    # What the listeners got equals what was stored, column for column.
    assert sum(r["prompt_tokens"] for r in seen) == prompt
    assert sum(r["spend_pusd"] for r in seen) == spend
    assert {r["key_alias"] for r in seen} == {"team-a", None}
    assert sum(1 for r in seen if r["key_alias"]) == 1000
    # Whole rows only for the watched deployment, without bodies.
    assert len(whole) == 1500 and {r["deployment"] for r in whole} == {"d1"}
    assert "request" not in whole[0] and whole[0]["cost_breakdown"]
    assert recorder.depth == 0


def key_spend(db: Database) -> tuple[int, int]:
    """The key's spend in the database, and the sum of its records' spend."""
    (spent,) = db.fetchone("SELECT spent_pusd FROM virtual_keys WHERE alias = 'team-a'") or (0,)
    (summed,) = db.fetchone("SELECT SUM(spend_pusd) FROM records WHERE key_alias = 'team-a'") or (0,)
    return int(spent), int(summed or 0)


def ended(pid: int) -> bool:
    """The process has exited (a zombie waiting for whoever adopted it counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def test_a_killed_recorder_process_is_replaced_and_nothing_is_lost_or_doubled(db: Database) -> None:
    KeyStore(db).create("team-a")
    orphans: list[int] = []  # the killed processes' finisher processes

    async def body(r: RemoteRecorder) -> None:
        for i in range(4000):
            await r.submit(rec(i))
            if i % 50 == 0:
                await asyncio.sleep(0.001)
            if i in (1000, 2500):  # mid-stream, with records in flight and unsettled
                assert r._proc is not None
                pid = r._proc.pid
                await wait_for(lambda pid=pid: len(finisher_processes(pid)) == 1)
                orphans.extend(finisher_processes(pid))
                os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: r.restarted == 2 and r.depth == 0)
        await wait_for(lambda: all(map(ended, orphans)))  # each ends with its recorder process

    recorder = run(db.url, body)
    assert recorder.restarted == 2 and len(orphans) == 2
    count, ids, prompt, cached, _ = ledger(db)
    assert (count, ids, prompt, cached) == expected(4000)
    # The key's spend went into the database with its records, by the processes that stored them
    # (two of them killed before reporting all they stored), with no listener in this process.
    spent, summed = key_spend(db)
    assert spent == summed > 0


def rollup_totals(db: Database) -> tuple[int, int]:
    """Requests and prompt tokens in the hourly rollups (as the Usage tab reads them)."""
    requests, prompt = db.fetchone("SELECT SUM(requests), SUM(prompt_tokens) FROM rollup_hour")
    return int(requests or 0), int(prompt or 0)


def test_a_killed_finisher_process_loses_nothing_and_doubles_nothing(db: Database) -> None:
    """Records sent to the finisher process and not answered when it dies are finished by the
    recorder process; none of those it did answer is finished twice (the rollups would count it)."""
    killed: list[int] = []

    async def body(r: RemoteRecorder) -> None:
        assert r._proc is not None
        pid = r._proc.pid
        await wait_for(lambda: len(finisher_processes(pid)) == 1)
        for i in range(4000):
            await r.submit(rec(i))
            if i % 50 == 0:
                await asyncio.sleep(0.001)
            if i == 1500:  # mid-stream, with records in flight
                killed.extend(finisher_processes(pid))
                os.kill(killed[0], signal.SIGKILL)
        await wait_for(lambda: r.depth == 0)
        assert r.restarted == 0 and r._proc.poll() is None  # the recorder process carried on
        assert finisher_processes(pid) == []  # (reaped)

    recorder = run(db.url, body)
    assert len(killed) == 1
    count, ids, prompt, cached, _ = ledger(db)
    assert (count, ids, prompt, cached) == expected(4000)
    assert rollup_totals(db) == (4000, prompt)
    assert recorder.lost == 0 and recorder.written == 4000


def test_a_hung_recorder_process_at_shutdown_leaves_its_records_to_the_gateway(db: Database) -> None:
    async def body(r: RemoteRecorder) -> None:
        for i in range(500):
            await r.submit(rec(i))
        await wait_for(lambda: r.depth == 0)
        assert r._proc is not None
        os.kill(r._proc.pid, signal.SIGSTOP)  # alive, but settles nothing more
        for i in range(500, 800):
            await r.submit(rec(i))
        await asyncio.sleep(0.2)
        assert r.depth == 300

    recorder = RemoteRecorder(ChildConfig(database=db.url))
    heard: list[str] = []  # what the listeners (key and user spend, metrics) were told, row by row
    recorder.add_listener(lambda rows: heard.extend(r["id"] for r in rows))

    async def main() -> None:
        recorder.start()
        await body(recorder)
        await asyncio.to_thread(recorder.stop, 2.0)

    asyncio.run(main())
    count, ids, prompt, cached, _ = ledger(db)
    assert (count, ids, prompt, cached) == expected(800)
    assert recorder.depth == 0
    # the 300 the gateway stored itself reach the listeners too, and nothing twice
    assert len(heard) == 800 and sorted(heard) == sorted(r[0] for r in db.fetchall("SELECT id FROM records"))


def test_back_pressure_past_the_recorders_capacity(db: Database) -> None:
    async def body(r: RemoteRecorder) -> None:
        assert r._proc is not None
        os.kill(r._proc.pid, signal.SIGSTOP)
        # The in-process recorder's capacity: its queue, and six batches in its pipeline.
        accepted = [r.submit_nowait(rec(i)) for i in range(1500)]
        assert accepted.count(True) == 100 + 6 * 200 and r.depth == 1300
        os.kill(r._proc.pid, signal.SIGCONT)
        await wait_for(lambda: r.depth == 0)

    run(db.url, body, queue_size=100)
    assert ledger(db)[0] == 1300


@pytest.mark.skipif(not priority.can_switch(), reason="needs CAP_SYS_NICE to leave SCHED_IDLE")
def test_idle_class_while_it_keeps_up_normal_when_it_falls_behind(db: Database, monkeypatch: Any) -> None:
    monkeypatch.setattr(remote, "BOOST_ABOVE", 50)
    monkeypatch.setattr(remote, "IDLE_BELOW", 10)

    def policies(pid: int) -> set[int]:
        """The CPU classes of the recorder process's threads and of its finisher process's."""
        pids = [pid, *finisher_processes(pid)]
        return {os.sched_getscheduler(int(t)) for p in pids for t in os.listdir(f"/proc/{p}/task")}

    async def body(r: RemoteRecorder) -> None:
        assert r._proc is not None
        pid = r._proc.pid
        await wait_for(lambda: len(os.listdir(f"/proc/{pid}/task")) >= 4)  # its threads are up
        await wait_for(lambda: len(finisher_processes(pid)) == 1)  # and its finisher process
        assert policies(pid) == {os.SCHED_IDLE}
        os.kill(pid, signal.SIGSTOP)
        for i in range(60):
            await r.submit(rec(i))
        assert policies(pid) == {os.SCHED_OTHER}  # behind: boosted
        os.kill(pid, signal.SIGCONT)
        await wait_for(lambda: r.depth == 0)
        await wait_for(lambda: policies(pid) == {os.SCHED_IDLE})  # caught up: idle again
        # A few records, far below the mark, but nothing settles (a busy machine starves it).
        os.kill(pid, signal.SIGSTOP)
        for i in range(60, 65):
            await r.submit(rec(i))
        await asyncio.sleep(remote.STALLED_S / 2)
        assert policies(pid) == {os.SCHED_IDLE}
        await wait_for(lambda: policies(pid) == {os.SCHED_OTHER}, timeout=4 * remote.STALLED_S)
        os.kill(pid, signal.SIGCONT)
        await wait_for(lambda: r.depth == 0)

    run(db.url, body, idle=True)
    assert ledger(db)[0] == 65


def test_the_recorder_process_does_the_storage_upkeep(db: Database) -> None:
    """Indexing the settled time and retention run in the recorder process (its first pass at start)."""
    now = time.time()

    def old(i: int, age_s: float) -> CallRecord:
        r = rec(i)
        r.start, r.end = now - age_s, now - age_s + 0.01
        r.id = new_record_id(r.start)
        return r

    with db.transaction() as tx:  # as if the indexer last ran an hour ago
        slots.set_until(db, tx, slots.floor_slot(int((now - 3600) * 1e6)))
    plain = Recorder(db, spool_dir=db_dir(db) / "spool")  # (in-process: no upkeep of its own)
    plain.start()
    for i in range(60):
        plain.put(old(i, 3 * 86400))  # past a one-day retention
        plain.put(old(i, 600))  # settled, not indexed yet
    plain.stop()
    recent = int((now - 3600) * 1e6)
    filters = "SELECT COUNT(*) FROM record_filters WHERE dim = 'key' AND value = 'team-a' AND start_us "
    assert ledger(db)[0] == 120
    assert db.fetchone(filters + "> :t", {"t": recent})[0] == 0  # (the old ones: by the writer, late)

    async def idle(r: RemoteRecorder) -> None:
        await wait_for(lambda: ledger(db)[0] == 60 and db.fetchone(filters + "> :t", {"t": recent})[0] > 0)

    config = ChildConfig(database=db.url, retention=Retention(records_days=1))
    recorder = RemoteRecorder(config)

    async def main() -> None:
        recorder.start()
        await idle(recorder)
        await asyncio.to_thread(recorder.stop, 20.0)

    asyncio.run(main())
    assert db.fetchone(filters + "> :t", {"t": recent})[0] == 20  # every third of the 60 kept
    assert db.fetchone(filters + "<= :t", {"t": recent})[0] == 0  # pruned with their records


def test_a_body_too_deep_to_encode_is_dropped_not_the_record(db: Database) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):  # (the /v1 fuzzer sent one: pickling it raised RecursionError)
        node["a"] = {}
        node = node["a"]

    async def body(r: RemoteRecorder) -> None:
        bad = rec(0)
        bad.request_body = deep
        await r.submit(bad)
        await r.submit(rec(1))
        await wait_for(lambda: r.depth == 0)

    run(db.url, body)
    assert ledger(db)[:4] == expected(2)


def test_every_field_of_a_record_crosses_the_wire() -> None:
    """A new CallRecord field must survive the encoding (it is positional)."""
    r = rec(3)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(CallRecord):
        v = getattr(r, f.name)
        if f.name not in ("deployment", "usage", "id"):
            v = {bool: True, int: 42, float: 1.5, str: "x"}.get(type(v), v)
            if v is None:
                v = "set"
        values[f.name] = v
    values["trace"] = None  # (an OpenTelemetry span's ids: a dataclass of its own, pickled as is)
    values["attempts"] = None
    r2 = CallRecord(**values)
    sent: list[bytes] = []
    table = wire.DeploymentTable()
    data = wire.encode_record(r2, table.index(r2.deployment, sent.append))
    assert len(sent) == 1 and table.index(r2.deployment, sent.append) == 0 and len(sent) == 1
    decoded = wire.decode_record(wire.payload(data), {0: wire.payload(sent[0])[1]})
    assert decoded == r2
    assert wire.payload(wire.replayed(data)) == wire.payload(data)
    assert wire.replayed(data)[4:5] == wire.REPLAY


def test_a_record_frame_the_process_cannot_decode_is_lost_not_the_process(db: Database) -> None:
    """Dying on it, the process would be started again and given the same frame: a crash loop."""
    bad = [rec(1), rec(2)]

    async def body(r: RemoteRecorder) -> None:
        await r.submit(rec(0))
        index = r._deployments.index(bad[0].deployment, r._pending.append)
        garbled = wire.encode_record(bad[0], index)
        garbled = garbled[: -len(garbled) // 2] + b"\x00not a pickle"  # (the header's length is kept honest below)
        garbled = (len(garbled) - 5).to_bytes(4, "big") + garbled[4:]
        unknown = wire.encode_record(bad[1], 99)  # a deployment this process was never told of
        for record, frame in zip(bad, (garbled, unknown), strict=True):  # as submit_nowait queues one
            r._unsettled[record.id] = frame
            r._queue(frame)
        for i in range(3, 6):
            await r.submit(rec(i))
        await wait_for(lambda: (r.depth == 0 and r.lost == 2) or r.restarted > 0)
        assert r.restarted == 0 and r._proc is not None and r._proc.poll() is None
        assert r.problem is None  # (lost records are counted, not a standing problem)

    recorder = run(db.url, body)
    stored = {row[0] for row in db.fetchall("SELECT id FROM records")}
    assert len(stored) == 4 and not stored & {b.id for b in bad}
    assert recorder.lost == 2 and recorder.depth == 0


def test_replays_are_stored_without_waiting_for_the_next_record(db: Database) -> None:
    async def body(r: RemoteRecorder) -> None:
        await r.submit(rec(0))
        await wait_for(lambda: r.depth == 0)
        assert r._proc is not None
        os.kill(r._proc.pid, signal.SIGSTOP)
        await r.submit(rec(1))  # sent, never read
        await asyncio.sleep(0.05)
        os.kill(r._proc.pid, signal.SIGKILL)
        await wait_for(lambda: r.restarted == 1 and r.depth == 0, timeout=5.0)  # and no record since

    run(db.url, body)
    assert ledger(db)[:4] == expected(2)


def test_a_stored_record_reaches_the_listeners_once_through_replays_and_spools(db: Database) -> None:
    """The listeners keep this process's copy of key spend (and metrics): a record heard twice would
    count twice there; in the database, its spend is added with the record, once."""
    KeyStore(db).create("team-a")
    replayed, respooled = rec(0), rec(1)
    rows = [finish(r, Pricer(), True) for r in (replayed, respooled)]
    insert_rows(db, rows)
    # `respooled` was stored from a spool, and reported, by a process that died before removing the file.
    spool = Spool(default_spool_dir(db), database_key(db))
    spool.append(rows[1:])
    dead = subprocess.Popen(["true"])
    dead.wait()
    spool.path.rename(spool.path.with_name(f"spool-{spool.key}-{dead.pid}.jsonl"))
    seen: list[str] = []

    async def body(r: RemoteRecorder) -> None:
        r.add_listener(lambda rows: seen.extend(row["id"] for row in rows))
        await r.submit(rec(2))
        # `replayed` was stored by a recorder process that died before reporting it: its frame is
        # among the unsettled, and the next process is given it again.
        r._unsettled[replayed.id] = wire.encode_record(replayed, r._deployments.index(DEPS[0], r._pending.append))
        await wait_for(lambda: len(r._unsettled) == 1 and not any(spool.dir.glob("*.jsonl")))
        assert r._proc is not None
        os.kill(r._proc.pid, signal.SIGKILL)
        await wait_for(lambda: r.restarted == 1 and r.depth == 0 and replayed.id in seen)
        await asyncio.sleep(0.2)  # (anything reported twice has come by now)

    run(db.url, body)
    assert sorted(seen) == sorted([replayed.id, rec_id(db, exclude={replayed.id, respooled.id})])
    assert ledger(db)[0] == 3
    spent, summed = key_spend(db)  # `replayed` is the key's: stored, replayed, found stored
    assert spent == summed == rows[0]["spend_pusd"] > 0


def rec_id(db: Database, exclude: set[str]) -> str:
    (only,) = [row[0] for row in db.fetchall("SELECT id FROM records") if row[0] not in exclude]
    return str(only)
