"""Benchmark and evaluation runs (table ``runs``, migration 0002): parameters and report as JSON."""

from __future__ import annotations

from typing import Any

import orjson

from modelmeter.storage.database import Database
from modelmeter.units import iso

_COLS = "id, kind, deployment, created_us, params, report"


class RunExists(ValueError):
    pass


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    rid, kind, deployment, created_us, params, report = row
    return {
        "id": rid,
        "kind": kind,
        "deployment": deployment,
        "created": iso(int(created_us)),
        "created_us": int(created_us),
        "params": orjson.loads(params),
        "report": orjson.loads(report) if report else None,
    }


def insert_run(db: Database, run: dict[str, Any]) -> dict[str, Any]:
    """Store a run; RunExists if its id is taken."""
    params = {
        "id": run["id"],
        "kind": run["kind"],
        "deployment": run.get("deployment"),
        "created_us": int(run["created_us"]),
        "params": orjson.dumps(run.get("params") or {}).decode(),
        "report": None if run.get("report") is None else orjson.dumps(run["report"]).decode(),
    }
    inserted = db.execute(
        f"INSERT INTO runs ({_COLS}) VALUES "
        "(:id, :kind, :deployment, :created_us, :params, :report) "
        "ON CONFLICT (id) DO NOTHING",
        params,
    )
    if not inserted:
        raise RunExists(f"a run with id {run['id']!r} is already stored")
    return get_run(db, run["id"]) or {}


def get_run(db: Database, run_id: str) -> dict[str, Any] | None:
    row = db.fetchone(f"SELECT {_COLS} FROM runs WHERE id = :id", {"id": run_id})
    return _row(row) if row else None


def list_runs(
    db: Database,
    *,
    kind: str | None = None,
    deployment: str | None = None,
    limit: int = 50,
    before_us: int | None = None,
) -> list[dict[str, Any]]:
    """Newest first; ``before_us`` pages back from an earlier page's oldest ``created_us``."""
    where: list[str] = []
    params: dict[str, Any] = {"lim": limit}
    if kind:
        where.append("kind = :kind")
        params["kind"] = kind
    if deployment:
        where.append("deployment = :dep")
        params["dep"] = deployment
    if before_us is not None:
        where.append("created_us < :before")
        # Within BIGINT, where every stored value is: same rows, and no overflow from the driver.
        params["before"] = min(max(before_us, -(2**63)), 2**63 - 1)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = db.fetchall(f"SELECT {_COLS} FROM runs{clause} ORDER BY created_us DESC, id DESC LIMIT :lim", params)
    return [_row(r) for r in rows]


def update_report(db: Database, run_id: str, report: dict[str, Any]) -> None:
    """A server-side run's progress, then its final report (one writer: the run's own thread)."""
    db.execute("UPDATE runs SET report = :r WHERE id = :id", {"r": orjson.dumps(report).decode(), "id": run_id})


def update_params(db: Database, run_id: str, params: dict[str, Any]) -> None:
    """The stop request of a server-side run lives in its params: the run's thread never writes them."""
    db.execute("UPDATE runs SET params = :p WHERE id = :id", {"p": orjson.dumps(params).decode(), "id": run_id})
