"""Files that hold bodies and key hashes are created readable by their owner only (#18.6, #18.12):
the SQLite database with its -wal and -shm files, and the spool (0600 files in a 0700 directory)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelmeter.recording.spool import Spool
from tests.fakes.upstream import FakeUpstream
from tests.helpers import http_json


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most shells have: files 0644 unless we ask for less
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_are_private(
    usual_umask: None, fake_upstream: FakeUpstream, make_config: Any, start_server: Any
) -> None:
    config = make_config(
        deployments=[{"name": "chat", "model": "gpt-4o-mini", "provider": "openai", "api_base": fake_upstream.base_url}]
    )
    server = start_server(config)
    status, _ = http_json(
        "POST",
        server.base_url + "/chat/completions",
        {"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert status == 200
    server.wait_for_records("chat", 1)
    db = Path(make_config.db_path)
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    assert all(f.exists() for f in files), files
    assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}


def test_spool_files_are_private(usual_umask: None, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([{"id": "x"}])  # type: ignore[list-item]
    assert oct(mode(spool.path)) == "0o600"
    assert oct(mode(spool.dir)) == "0o700"
