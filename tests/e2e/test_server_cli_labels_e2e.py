"""The CLI and the API say truthfully where things come from, and what to do (issue #11.18, CLI parts):
built-in deployments are not "defined in the config file" nor priced "from the price catalog"; a 401
says which variable to set; after a restart ``serve`` says how to sign in."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import ConfigWriter
from tests.helpers import ADMIN_KEY, ServerProcess, closed_port_url, run_cli

EMBEDDED = "smollm2-135m-instruct"


@pytest.mark.timeout(180)
def test_built_in_deployments_are_labelled_built_in(
    make_config: ConfigWriter, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_config(), startup_timeout=150)  # no [[deployments]]: the built-in ones
    status, body = server.api("GET", f"/api/deployments/{EMBEDDED}")
    assert status == 200, body
    assert body["source"] == "builtin" and body["price_source"] == "none", body
    listed = run_cli("deploy", "list", "--url", server.url)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if row.startswith(EMBEDDED))
    assert "built-in" in line and "embedded" in line and "catalog" not in line, line
    assert "127.0.0.1" not in line  # not the embedded worker's internal URL
    removed = run_cli("deploy", "remove", EMBEDDED, "--url", server.url)
    assert removed.returncode == 1
    assert "built-in" in removed.stderr and "config file" in removed.stderr, removed.stderr
    assert "is defined in the config file" not in removed.stderr, removed.stderr


def test_config_and_run_time_deployments_are_labelled_so(
    make_config: ConfigWriter, start_server: Callable[..., ServerProcess]
) -> None:
    base = closed_port_url()
    server = start_server(make_config(deployments=[{"name": "chat", "model": "gpt-4o-mini", "api_base": base}]))
    added = run_cli(
        "deploy", "add", "rt", "--api-base", base, "--price", '{"input": 1, "output": 2}', "--url", server.url
    )
    assert added.returncode == 0, added.stderr
    rows = {r.split()[0]: r for r in run_cli("deploy", "list", "--url", server.url).stdout.splitlines()}
    assert "config" in rows["chat"] and "catalog prices" in rows["chat"], rows
    assert "run-time" in rows["rt"] and "own prices" in rows["rt"], rows
    removed = run_cli("deploy", "remove", "chat", "--url", server.url)
    assert removed.returncode == 1 and "is defined in the config file" in removed.stderr, removed.stderr


def test_cli_401_says_which_variable_to_set(
    make_config: ConfigWriter, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_config(deployments=[]))
    missing = run_cli("deploy", "list", "--url", server.url, env={"MODELMETER_ADMIN_KEY": ""})
    assert missing.returncode == 1
    assert "export MODELMETER_ADMIN_KEY=" in missing.stderr and "--admin-key" in missing.stderr, missing.stderr
    wrong = run_cli("deploy", "list", "--url", server.url, env={"MODELMETER_ADMIN_KEY": "not-the-key"})
    assert wrong.returncode == 1 and "refused the admin key" in wrong.stderr, wrong.stderr
    given = run_cli("deploy", "list", "--url", server.url, "--admin-key", ADMIN_KEY, env={"MODELMETER_ADMIN_KEY": ""})
    assert given.returncode == 0, given.stderr


def test_serve_says_how_to_sign_in_after_a_restart(
    make_config: ConfigWriter, start_server: Callable[..., ServerProcess]
) -> None:
    cfg = make_config(deployments=[])
    first = start_server(cfg, env={"MODELMETER_ADMIN_KEY": ""})
    first.stop()
    assert "?token=" in first.stderr, first.stderr  # the generated key, shown once
    again = start_server(cfg, env={"MODELMETER_ADMIN_KEY": ""})
    again.stop()
    assert "?token=" not in again.stderr
    assert "sign in with the admin key printed at the first start" in again.stderr, again.stderr
    assert "MODELMETER_ADMIN_KEY" in again.stderr
