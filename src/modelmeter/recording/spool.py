"""A local spool file for finished records while the database is unreachable.

Finished rows are appended as JSON lines (one batch per write, flushed and fsynced), so a record that
got past the bounded queue survives a database outage and even a crash. When the database is back the
writer stores the spooled rows (idempotently: ids already stored are skipped) and removes the file.

A spool file names its database (``spool-<database key>-<pid>.jsonl``; the key is a hash of the
database's address without its password, see ``database_key``): several databases may share a spool
directory (two SQLite files side by side, PostgreSQL databases under one MODELMETER_HOME), and each
file is stored only into the database it was written for. Files left by a process that died are
claimed by the next one by renaming them (``claimed-<claimer pid>-…``); a claim whose claimer died
too is taken back the same way. The files are created 0600 in a 0700 directory: they hold bodies.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import orjson

from modelmeter.storage.row import RecordRow

if TYPE_CHECKING:
    from modelmeter.storage.database import Database

log = logging.getLogger("modelmeter.recorder")
_CLAIMED = re.compile(r"^claimed-(\d+)-(spool-.+)$")


def database_key(db: Database) -> str:
    """A short, stable name for a database that holds no secret: a hash of its resolved file path
    (SQLite), or of its host, port, database name and user (PostgreSQL; never the password)."""
    if db.dialect == "sqlite":
        where = "sqlite:" + (db.path if db.path == ":memory:" else str(Path(db.path).expanduser().resolve()))
    else:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(db.path)
        where = "postgresql:" + "|".join(str(info.get(k) or "") for k in ("host", "hostaddr", "port", "dbname", "user"))
    return hashlib.sha256(where.encode()).hexdigest()[:16]


class Spool:
    def __init__(self, directory: Path, key: str = "default") -> None:
        self.dir = directory
        self.key = key
        self.path = directory / f"spool-{key}-{os.getpid()}.jsonl"
        self._lock = threading.Lock()
        self.rows = 0  # rows in this process's spool file, not yet stored
        self._warned_foreign = False

    def append(self, rows: list[RecordRow]) -> None:
        """Write a batch, or raise OSError (e.g. the disk is full) having written nothing of it."""
        data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
        with self._lock:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with open(fd, "ab") as f:
                size = f.seek(0, os.SEEK_END)
                try:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                except OSError:
                    # Cut off what part of the batch got in: the file's lines stay whole, and the
                    # caller keeps the batch elsewhere.
                    try:
                        f.truncate(size)
                    except OSError:
                        log.exception("could not cut a partly written batch from %s", self.path)
                    raise
            self.rows += len(rows)

    def claim(self) -> list[Path]:
        """This process's file, those of dead processes and claims of dead claimers, all for this
        database, renamed so no one else takes them."""
        if not self.dir.is_dir():
            return []
        me = os.getpid()
        claimed: list[Path] = []
        with self._lock:
            for path in sorted(self.dir.glob("*.jsonl")):
                name = path.name
                match = _CLAIMED.match(name)
                original = match.group(2) if match else name
                if not original.startswith(f"spool-{self.key}-"):
                    self._warn_foreign(original)
                    continue
                owner = int(match.group(1)) if match else _pid_of(original)
                if owner != me and _alive(owner):
                    continue
                if match and owner == me:
                    claimed.append(path)
                    continue
                target = path.with_name(f"claimed-{me}-{original}")
                try:
                    path.rename(target)
                except OSError:
                    continue  # another process claimed it first
                claimed.append(target)
            self.rows = 0
        return claimed

    def _warn_foreign(self, name: str) -> None:
        """A file of another database (or of a version that did not name it): left alone."""
        if not self._warned_foreign and not re.match(r"^spool-[0-9a-f]{16}-\d+\.jsonl$", name):
            self._warned_foreign = True
            log.warning(
                "spool file %s does not say which database it belongs to (written by an older "
                "modelmeter): it is not stored anywhere automatically",
                self.dir / name,
            )

    @staticmethod
    def read(path: Path, batch: int = 1000) -> Iterator[list[RecordRow]]:
        rows: list[RecordRow] = []
        with open(path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break  # a torn last line from a crash mid-write; its batch was never acknowledged
                try:
                    rows.append(cast(RecordRow, orjson.loads(line)))
                except orjson.JSONDecodeError:
                    log.error("skipped an unreadable line in %s", path)
                    continue
                if len(rows) >= batch:
                    yield rows
                    rows = []
        if rows:
            yield rows

    def pending(self) -> bool:
        if self.rows > 0:
            return True
        if not self.dir.is_dir():
            return False
        return any(True for _ in self.dir.glob(f"spool-{self.key}-*.jsonl")) or any(
            True for _ in self.dir.glob(f"claimed-*-spool-{self.key}-*.jsonl")
        )


def default_spool_dir(db: Database) -> Path:
    """Beside the SQLite file, or in ~/.modelmeter (MODELMETER_HOME) for PostgreSQL."""
    if db.dialect == "sqlite" and db.path != ":memory:":
        return Path(db.path).expanduser().resolve().parent / ".modelmeter-spool"
    home = Path(os.environ.get("MODELMETER_HOME", Path.home() / ".modelmeter"))
    return home / "spool"


def _pid_of(name: str) -> int:
    try:
        return int(name.removesuffix(".jsonl").rsplit("-", 1)[-1])
    except ValueError:
        return 0


def _alive(pid: int) -> bool:
    """Is this process still running?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
