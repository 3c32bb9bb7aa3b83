"""``modelmeter deploy``: add, list and remove deployments of a running server."""

from __future__ import annotations

import json
from typing import Any

import click

from modelmeter.cli.client import admin_key_option, call, url_option

# where a deployment comes from, as `deploy list` shows it
_ORIGINS = {"builtin": "built-in", "config": "config", "api": "run-time"}
_PRICES = {"catalog": "catalog prices", "deployment": "own prices", "none": "no prices"}


@click.group()
def deploy() -> None:
    """Manage the deployments of a running server (no restart needed)."""


@deploy.command("add")
@click.argument("name")
@click.option(
    "--api-base",
    help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8001/v1. Omit with --provider local for an embedded model.",
)
@click.option("--model", help="Model id sent upstream (default: NAME).")
@click.option("--provider", help="Label; also used to look up prices (default: openai).")
@click.option("--api-key-env", help="Environment variable holding the upstream key.")
@click.option("--price", help='USD per million tokens, e.g. \'{"input": 0.15, "output": 0.6}\'.')
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    help='One of several upstreams (repeat it), as JSON: \'{"api_base": "http://10.0.0.12:8000/v1", "weight": 2}\' '
    "(also name, model, api, api_key_env, price, priority, max_concurrency).",
)
@click.option("--routing", type=click.Choice(["weighted", "least_busy"]), help="How upstreams are chosen.")
@url_option()
@admin_key_option()
def add(
    name: str,
    api_base: str | None,
    model: str | None,
    provider: str | None,
    api_key_env: str | None,
    price: str | None,
    upstreams: tuple[str, ...],
    routing: str | None,
    url: str,
    admin_key: str | None,
) -> None:
    """Add deployment NAME."""
    body: dict[str, Any] = {
        "name": name,
        "api_base": api_base,
        "model": model,
        "provider": provider,
        "api_key_env": api_key_env,
        "routing": routing,
    }
    if upstreams:
        try:
            body["upstreams"] = [json.loads(u) for u in upstreams]
        except ValueError:
            raise click.BadParameter("each must be a JSON object", param_hint="--upstream") from None
    if price:
        try:
            body["price"] = json.loads(price)
        except ValueError:
            raise click.BadParameter("must be a JSON object", param_hint="--price") from None
    dep = call(url, "POST", "/api/deployments", {k: v for k, v in body.items() if v is not None}, admin_key=admin_key)
    shown = ", ".join(u["name"] for u in dep["upstreams"]) if dep.get("upstreams") else dep["api_base"] or "embedded"
    click.echo(f"added {dep['name']} -> {shown} ({dep['model']})")


@deploy.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@url_option()
@admin_key_option()
def list_(as_json: bool, url: str, admin_key: str | None) -> None:
    """List deployments with their last-24-hours figures."""
    data = call(url, "GET", "/api/deployments", admin_key=admin_key)["data"]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for d in data:
        day = d["last_24h"]
        state = "up" if d["reachable"] else "unreachable"
        where = "embedded" if d.get("local") else (d["api_base"] or "")
        click.echo(
            f"{d['name']:<28} {d['provider']:<10} {state:<12} {day['requests']:>7} req/24h "
            f"${day['spend']:.4f}  {_ORIGINS.get(d.get('source', ''), ''):<9} "
            f"{_PRICES.get(d.get('price_source', ''), ''):<14} {where}"
        )


@deploy.command("remove")
@click.argument("name")
@url_option()
@admin_key_option()
def remove(name: str, url: str, admin_key: str | None) -> None:
    """Remove run-time deployment NAME."""
    call(url, "DELETE", f"/api/deployments/{name}", admin_key=admin_key)
    click.echo(f"removed {name}")
