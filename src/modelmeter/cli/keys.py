"""``modelmeter keys``: virtual keys of a running server."""

from __future__ import annotations

import json

import click

from modelmeter.cli.client import admin_key_option, call, url_option


@click.group()
def keys() -> None:
    """Create, list and revoke virtual keys for the /v1 endpoints."""


@keys.command("create")
@click.argument("alias")
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute.")
@click.option("--tpm", type=click.IntRange(min=1), help="Tokens per minute.")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), help="Spend budget, USD.")
@url_option()
@admin_key_option()
def create(alias: str, rpm: int | None, tpm: int | None, budget: float | None, url: str, admin_key: str | None) -> None:
    """Create key ALIAS and print it (it is shown this once; only its hash is kept)."""
    body = {"alias": alias, "rpm": rpm, "tpm": tpm, "budget_usd": budget}
    made = call(url, "POST", "/api/keys", {k: v for k, v in body.items() if v is not None}, admin_key=admin_key)
    click.echo(made["key"])
    click.echo(f"created key {made['alias']}: keep it now, it cannot be shown again", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@url_option()
@admin_key_option()
def list_(as_json: bool, url: str, admin_key: str | None) -> None:
    """List keys with their limits and spend."""
    data = call(url, "GET", "/api/keys", admin_key=admin_key)["data"]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for k in data:
        state = "revoked" if k["revoked"] else "active"
        limits = ", ".join(f"{n}={k[n]}" for n in ("rpm_limit", "tpm_limit", "budget_usd") if k[n] is not None)
        click.echo(f"{k['alias']:<24} {k['key_prefix']}…  {state:<8} spent ${k['spent_usd']:.4f}  {limits}")


@keys.command("revoke")
@click.argument("alias")
@url_option()
@admin_key_option()
def revoke(alias: str, url: str, admin_key: str | None) -> None:
    """Revoke key ALIAS at once."""
    call(url, "DELETE", f"/api/keys/{alias}", admin_key=admin_key)
    click.echo(f"revoked {alias}")


@keys.command("rotate-admin")
@click.option("--config", "-c", type=click.Path(dir_okay=False))
@click.option("--database")
def rotate_admin(config: str | None, database: str | None) -> None:
    """A new admin key (printed once; only its hash is stored) and a new session secret, so every
    dashboard session ends. Servers take both at their next start."""
    from modelmeter.auth.admin import reset_admin_key
    from modelmeter.cli.serve import _settings
    from modelmeter.storage.database import Database
    from modelmeter.storage.migrations import migrate

    settings = _settings(config, None, None, database, None)
    db = Database(settings.database)
    migrate(db)
    click.echo(reset_admin_key(db))
    note = (
        " MODELMETER_ADMIN_KEY (or admin_key in the config) is set: servers use that key, not this one; change it too."
        if settings.admin_key
        else ""
    )
    click.echo(
        "new admin key (keep it now, it cannot be shown again); every session is ended. Restart the "
        f"server(s) to apply.{note}",
        err=True,
    )
