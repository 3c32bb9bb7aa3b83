"""Several connections opening one new SQLite file at once (gateway workers, the writer thread and
API threads all start together on a fresh database)."""

from __future__ import annotations

import threading
from pathlib import Path

from modelmeter.storage.database import Database


def test_connections_opening_a_new_file_at_once_all_get_wal(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    modes: list[str] = []
    for round_ in range(60):
        url = f"sqlite:///{tmp_path}/open-{round_}.db"
        start = threading.Barrier(6)

        def open_one(url: str = url, start: threading.Barrier = start) -> None:
            db = Database(url)
            try:
                start.wait()
                modes.append(db.connection().execute("PRAGMA journal_mode").fetchone()[0])
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.close()

        threads = [threading.Thread(target=open_one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert modes == ["wal"] * 360
