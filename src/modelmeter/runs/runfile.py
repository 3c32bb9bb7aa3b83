"""The file ``modelmeter runs export`` writes and ``runs import`` / ``POST /api/runs/import`` read:
one run as ``/api/runs/{id}`` answers it, marked with a format name and version so that another
modelmeter knows whether it can read it. A file without the mark (written before it existed, or
the Runs page's Export JSON download) is read as version 1: the shape is the same."""

from __future__ import annotations

import os
import re
from typing import Any, TypedDict

import orjson

FORMAT = "modelmeter.run"
FORMAT_VERSION = 1
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")  # as /api/runs and the local run files
MAX_BYTES = 32 * 1024 * 1024


class RunFileError(ValueError):
    """Why a file cannot be imported; ``code`` names the reason for the API's answer."""

    def __init__(self, message: str, code: str = "invalid_run_file") -> None:
        super().__init__(message)
        self.code = code


class ImportedRun(TypedDict):
    id: str
    kind: str
    deployment: str | None
    created_us: int
    params: dict[str, Any]
    report: dict[str, Any] | None


def export_document(run: dict[str, Any]) -> dict[str, Any]:
    """The run as the file holds it: the mark first, then the run's fields."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, **run}


def parse(raw: bytes) -> ImportedRun:
    """The run a file holds, checked; RunFileError says what is wrong with it."""
    if len(raw) > MAX_BYTES:
        raise RunFileError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB: not a run export")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RunFileError(f"the file is not JSON ({exc}): give a file written by `modelmeter runs export`") from None
    if not isinstance(doc, dict):
        raise RunFileError("the file holds no run (a JSON object is expected, as `modelmeter runs export` writes)")
    _check_mark(doc)
    run_id = doc.get("id")
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise RunFileError(f"the run's 'id' is missing or not a run id: {run_id!r}")
    kind = doc.get("kind")
    if kind not in ("bench", "eval"):
        raise RunFileError(f"the run's 'kind' must be bench or eval, not {kind!r}")
    deployment = doc.get("deployment")
    if deployment is not None and (not isinstance(deployment, str) or len(deployment) > 200):
        raise RunFileError("the run's 'deployment' must be a name of at most 200 characters")
    created_us = doc.get("created_us")
    if isinstance(created_us, bool) or not isinstance(created_us, int) or not 0 <= created_us < 2**63:
        raise RunFileError("the run's 'created_us' must be microseconds since the epoch")
    params = doc.get("params", {})
    report = doc.get("report")
    if not isinstance(params, dict):
        raise RunFileError("the run's 'params' must be an object")
    if report is not None and not isinstance(report, dict):
        raise RunFileError("the run's 'report' must be an object")
    if isinstance(report, dict) and report.get("status") == "running":
        raise RunFileError(f"run {run_id!r} was still running when exported: export it again once it has ended")
    return {
        "id": run_id,
        "kind": kind,
        "deployment": deployment,
        "created_us": created_us,
        "params": params,
        "report": report,
    }


def _check_mark(doc: dict[str, Any]) -> None:
    fmt = doc.get("format", FORMAT)
    if fmt != FORMAT:
        raise RunFileError(f"the file's format is {fmt!r}, not {FORMAT!r}: it is not a modelmeter run export")
    version = doc.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise RunFileError(
            f"the file's format version is {version!r}; this modelmeter reads version {FORMAT_VERSION} "
            "(a newer modelmeter wrote it? upgrade this one)",
            "unsupported_format_version",
        )


def new_id(old: str) -> str:
    """An id for a copy of run ``old`` when ``old`` is taken: recognisably the same run."""
    return f"{old[:52]}-imp-{os.urandom(3).hex()}"
