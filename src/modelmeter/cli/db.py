"""``modelmeter db``: schema migrations of the configured database."""

from __future__ import annotations

import click

from modelmeter.cli.serve import _settings
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import applied, migrate, pending
from modelmeter.storage.retention import Retention, prune


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


@db.command("prune")
@click.option("--config", "-c", type=click.Path(dir_okay=False))
@click.option("--database")
@click.option("--bodies-days", type=click.FloatRange(min=0, min_open=True), help="Override retention.bodies_days.")
@click.option("--records-days", type=click.FloatRange(min=0, min_open=True), help="Override retention.records_days.")
@click.option("--rollups-days", type=click.FloatRange(min=0, min_open=True), help="Override retention.rollups_days.")
def prune_cmd(
    config: str | None,
    database: str | None,
    bodies_days: float | None,
    records_days: float | None,
    rollups_days: float | None,
) -> None:
    """Apply the retention policy now (the server also does it in the background)."""
    settings = _settings(config, None, None, database, None)
    policy = settings.retention
    policy = Retention(
        bodies_days if bodies_days is not None else policy.bodies_days,
        records_days if records_days is not None else policy.records_days,
        rollups_days if rollups_days is not None else policy.rollups_days,
    )
    if not policy.enabled:
        raise click.UsageError("no retention policy: set [retention] in the config or pass --*-days")
    database_ = Database(settings.database)
    migrate(database_)
    removed = prune(database_, policy)
    click.echo(f"removed {removed['bodies']} bodies, {removed['records']} records, {removed['rollups']} rollup rows")
