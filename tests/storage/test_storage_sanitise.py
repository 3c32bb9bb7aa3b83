"""Values a database would refuse never reach a batch (#18.4): NUL in any text (PostgreSQL text cannot
hold it) becomes U+FFFD, integers are clamped into their columns, so no batch is refused and
re-inserted row by row (which cut the PostgreSQL writer from >= 300 to ~100 records/s)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson
import pytest

from modelmeter.metering.record import CallRecord, new_record_id
from modelmeter.metering.usage import Usage
from modelmeter.recording.recorder import Recorder
from modelmeter.storage.database import Database
from modelmeter.storage.records import insert_rows
from tests.recording.test_recorder import DEP

from .test_storage import make_row

N = 400


def nul_record(i: int) -> CallRecord:
    """Every twentieth call carries NUL in a tag, its metadata, its error and its bodies."""
    now = time.time()
    r = CallRecord(
        id=new_record_id(now),
        deployment=DEP,
        model="d",
        call_type="chat",
        start=now,
        request_body={"messages": [{"role": "user", "content": "hi"}]},
    )
    r.end = now + 0.01
    r.latency_ms = 10.0
    r.usage = Usage(3, 4, 7, reported=True)
    r.tags = [f"t{i}"]
    if i % 20 == 0:
        r.tags = [f"bad\x00tag{i}", f"t{i}"]
        r.metadata = {"note\x00": "a\x00b"}
        r.status, r.http_status, r.error = "error", 400, "upstream said \x00 no"
        r.request_body = {"messages": [{"role": "user", "content": "nul \x00 here"}]}
    return r


@pytest.mark.postgres
def test_nul_never_makes_postgresql_refuse_a_batch(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from modelmeter.storage.migrations import migrate

    db = Database(pg_url)
    migrate(db)
    recorder = Recorder(db, batch_size=N, spool_dir=tmp_path / "spool", linger=0.2)
    recorder.start()
    try:
        with caplog.at_level(logging.ERROR, logger="modelmeter.recorder"):
            for i in range(N):
                assert recorder.submit_nowait(nul_record(i))
            recorder.stop()
        assert not [r for r in caplog.records if "refused" in r.getMessage()], "a batch was refused"
        assert recorder.dropped == 0
        assert db.fetchone("SELECT COUNT(*) FROM records")[0] == N
        # Nothing was stripped: the odd rows keep their tags, metadata, error and bodies, NUL as U+FFFD.
        tags = {t for (t,) in db.fetchall("SELECT tag FROM record_tags")}
        assert "bad\ufffdtag0" in tags and "t0" in tags and len(tags) == N + N // 20
        err, stored_tags, metadata, bodies = db.fetchone(
            "SELECT error, tags, metadata, bodies FROM records WHERE error IS NOT NULL LIMIT 1"
        )
        assert err == "upstream said \ufffd no" and bodies == 1
        assert "bad\ufffdtag" in orjson.loads(stored_tags)[0]
        assert orjson.loads(metadata) == {"note\x00": "a\x00b"}  # JSON text keeps its escapes
        (request,) = db.fetchone(
            "SELECT b.request FROM record_bodies b JOIN records r ON r.id = b.id WHERE r.error IS NOT NULL LIMIT 1"
        )
        assert "nul" in orjson.loads(request)["messages"][0]["content"]
    finally:
        recorder.stop()
        db.close()


def test_out_of_range_numbers_are_clamped_in_both_databases(db: Database) -> None:
    row = make_row(time.time())
    row.update(retries=2**40, http_status=-(2**20), prompt_tokens=2**70, cached_tokens=-(2**70))
    insert_rows(db, [row, make_row(time.time())])  # one batch: nothing refused
    stored = db.fetchone(
        "SELECT retries, http_status, prompt_tokens, cached_tokens FROM records WHERE id = :i", {"i": row["id"]}
    )
    assert stored == (2**15 - 1, -(2**15), 2**40, 0)  # counts: never negative, and their sums fit
    assert db.fetchone("SELECT COUNT(*) FROM records")[0] == 2


def test_lone_surrogates_are_replaced_in_both_databases(db: Database) -> None:
    row = make_row(time.time())
    row.update(error="bad \ud800 text", model="m\udfff", request_id="req-\ud83d")
    insert_rows(db, [row, make_row(time.time())])
    stored = db.fetchone("SELECT error, model, request_id FROM records WHERE id = :i", {"i": row["id"]})
    assert stored == ("bad \ufffd text", "m\ufffd", "req-\ufffd")


def test_every_field_has_a_kind() -> None:
    """The sanitiser knows every field of the row: text, integer or float (a new field must say)."""
    from modelmeter.storage import row as row_module

    floats = {"latency_ms", "ttft_ms", "overhead_ms"}
    kinds = [*row_module.TEXT_FIELDS, *row_module.SMALLINT_FIELDS, *row_module.BIGINT_FIELDS, *floats]
    assert sorted(kinds) == sorted(row_module.FIELDS)
