"""Shipped migrations are frozen (#11.23): they hold their own SQL and code and never call today's
application code, so changing rollups, histograms or request ids later cannot change what upgrading
an old database does."""

from __future__ import annotations

import ast
import random
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from modelmeter.storage import histogram, panel_sums, partitions, record_filters, request_ids, rollups, slots
from modelmeter.storage.database import Database
from modelmeter.usage.window import Window

from .test_rollups import DAY_US, chart_matches_rows, check
from .test_storage import make_row

STORAGE = Path(__file__).resolve().parents[2] / "src" / "modelmeter" / "storage"
# The migration modules may import each other (``migration_*``), the connection and nothing else.
ALLOWED = {"modelmeter.storage.database", "modelmeter.storage"}


def test_migration_modules_import_no_application_code() -> None:
    modules = sorted(p.name for p in STORAGE.glob("migration*.py"))
    assert {"migrations.py", "migration_steps.py", "migration_0003.py", "migration_0018.py"} <= set(modules)
    for name in modules:
        tree = ast.parse((STORAGE / name).read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("modelmeter"):
                imported.add(node.module)
                if node.module == "modelmeter.storage":
                    imported.update(f"modelmeter.storage.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names if a.name.startswith("modelmeter"))
        foreign = {m for m in imported - ALLOWED if not m.startswith("modelmeter.storage.migration")}
        assert not foreign, (name, sorted(foreign))


def test_upgrade_from_0002_does_not_run_todays_code(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Today's rollup, histogram and request-id code is booby-trapped while a 0002 database is
    upgraded: the migrations never touch it, and the summaries come out exact."""
    from modelmeter.storage import migrations

    rnd = random.Random(11)
    now = datetime(2026, 3, 10, 12, 34, 56).timestamp()
    rows = [
        make_row(
            now - rnd.uniform(0, 2 * 86400),
            latency=rnd.lognormvariate(5, 1),
            status="error" if rnd.random() < 0.1 else "success",
            prompt=rnd.randint(1, 500),
        )
        for _ in range(800)
    ]
    for i, r in enumerate(rows):
        r["request_id"] = f"chatcmpl-f{i}"
    db = Database(db_url)
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:2])
        migrations.migrate(db)
        cols = [
            c
            for c in rows[0]
            if c not in ("key_alias", "priced_model", "session_id", "served_by", "attempts", "request", "response")
        ]
        with db.transaction() as tx:
            db.executemany(
                tx, f"INSERT INTO records ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})", rows
            )
        monkeypatch.undo()

        def trap(*_: object, **__: object) -> None:
            raise AssertionError("a shipped migration called today's application code")

        with monkeypatch.context() as m:
            for module, names in (
                (rollups, ("aggregate", "coarsen", "upsert", "add_rows", "accumulate")),
                (histogram, ("bin_of", "encode")),
                (panel_sums, ("add", "pusd", "priced_pusd")),
                (slots, ("initial_until", "set_until", "index_slots", "index_range")),
                (request_ids, ("add", "find")),
                (record_filters, ("copy_sql", "add", "values")),
                (partitions, ("name", "days", "ensure", "ensure_ahead")),
            ):
                for name in names:
                    m.setattr(module, name, trap)
            migrations.migrate(db)
        end_us = int(now * 1e6) + 1
        for seconds in (3601, 86400 + 61, 3 * 86400):
            check(db, rows, Window(end_us - seconds * 1_000_000, end_us, ZoneInfo("UTC")))
        assert chart_matches_rows(db, rows, Window(end_us - DAY_US, end_us, ZoneInfo("UTC"))) > 50
        found = db.fetchone("SELECT id FROM request_ids WHERE request_id = :r", {"r": "chatcmpl-f7"})
        assert found == (rows[7]["id"],)
    finally:
        db.close()
