"""``modelmeter db``: schema migrations of the configured database."""

from __future__ import annotations

import click

from modelmeter.cli.serve import _settings
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import applied, migrate, pending


def _db(config: str | None, database: str | None) -> Database:
    return Database(_settings(config, None, None, database, None).database)


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("migrate")
@click.option("--config", "-c", type=click.Path(dir_okay=False))
@click.option("--database")
def migrate_cmd(config: str | None, database: str | None) -> None:
    """Apply pending migrations (serve also does this at start-up)."""
    ran = migrate(_db(config, database))
    click.echo("applied: " + ", ".join(ran) if ran else "up to date")


@db.command("status")
@click.option("--config", "-c", type=click.Path(dir_okay=False))
@click.option("--database")
def status_cmd(config: str | None, database: str | None) -> None:
    """Show applied and pending migrations."""
    database_ = _db(config, database)
    for name in applied(database_):
        click.echo(f"applied  {name}")
    for name in pending(database_):
        click.echo(f"pending  {name}")
