"""Remembered runs: each bench or eval run as one JSON file under ``$MODELMETER_HOME/runs``
(default ``~/.modelmeter/runs``), in the same shape ``/api/runs`` stores and returns."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import orjson

from modelmeter.units import iso

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def home() -> Path:
    return Path(os.environ.get("MODELMETER_HOME") or Path.home() / ".modelmeter")


def runs_dir() -> Path:
    return home() / "runs"


def new_run_id() -> str:
    """Sortable and short: UTC date and time, then 4 random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + os.urandom(2).hex()


def make_run(
    run_id: str,
    kind: str,
    deployment: str | None,
    params: dict[str, Any],
    report: dict[str, Any] | None,
    created: float | None = None,
) -> dict[str, Any]:
    created_us = int((created if created is not None else time.time()) * 1e6)
    return {
        "id": run_id,
        "kind": kind,
        "deployment": deployment,
        "created": iso(created_us),
        "created_us": created_us,
        "params": params,
        "report": report,
    }


def save_local(run: dict[str, Any]) -> Path:
    folder = runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run['id']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(run, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp, path)
    return path


def load_local(run_id: str) -> dict[str, Any] | None:
    if not RUN_ID.match(run_id):
        return None
    path = runs_dir() / f"{run_id}.json"
    try:
        run = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return run if isinstance(run, dict) else None


def list_local(kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first."""
    runs: list[dict[str, Any]] = []
    folder = runs_dir()
    if not folder.is_dir():
        return runs
    for path in folder.glob("*.json"):
        try:
            run = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if isinstance(run, dict) and (kind is None or run.get("kind") == kind):
            runs.append(run)
    runs.sort(key=lambda r: (r.get("created_us") or 0, r.get("id") or ""), reverse=True)
    return runs[:limit]
