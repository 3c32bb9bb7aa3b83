"""A local spool file for finished records while the database is unreachable.

Finished rows are appended as JSON lines (one batch per write, flushed and fsynced), so a record that
got past the bounded queue survives a database outage and even a crash. When the database is back the
writer stores the spooled rows (idempotently: ids already stored are skipped) and removes the file.
Files left by a process that died are claimed by the next one by renaming them first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson


class Spool:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.path = directory / f"spool-{os.getpid()}.jsonl"
        self._lock = threading.Lock()
        self.rows = 0  # rows in this process's spool file, not yet stored

    def append(self, rows: list[dict[str, Any]]) -> None:
        data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self.rows += len(rows)

    def claim(self) -> list[Path]:
        """This process's file and any left by dead processes, renamed so no one else takes them."""
        if not self.dir.is_dir():
            return []
        claimed: list[Path] = []
        with self._lock:
            for path in sorted(self.dir.glob("spool-*.jsonl")):
                if path != self.path and _alive(path):
                    continue
                target = path.with_name(f"claimed-{os.getpid()}-{path.name}")
                try:
                    path.rename(target)
                except OSError:
                    continue  # another process claimed it first
                claimed.append(target)
            self.rows = 0
        claimed += [p for p in self.dir.glob(f"claimed-{os.getpid()}-*.jsonl") if p not in claimed]
        return claimed

    @staticmethod
    def read(path: Path, batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        with open(path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break  # a torn last line from a crash mid-write; its batch was never acknowledged
                rows.append(orjson.loads(line))
                if len(rows) >= batch:
                    yield rows
                    rows = []
        if rows:
            yield rows

    def pending(self) -> bool:
        return self.rows > 0 or (self.dir.is_dir() and any(self.dir.glob("*.jsonl")))


def _alive(path: Path) -> bool:
    """Is the process that owns this spool file still running?"""
    try:
        pid = int(path.stem.split("-")[-1])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
