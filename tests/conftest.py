"""Shared fixtures. The helpers behind them live in ``tests/helpers.py`` (usable without pytest).

``fake_upstream``  (session) one ``tests.fakes.upstream.FakeUpstream`` subprocess; call
                   ``fake_upstream.reset()`` if a test depends on its counters.
``make_config``    ``make_config(deployments=[...], **server) -> Path``: a TOML config in the test's
                   ``tmp_path`` whose database is ``tmp_path/modelmeter.db`` unless ``database=`` is
                   given; ``make_config.db_path`` is that file.
``start_server``   ``start_server(config, env=None, args=()) -> ServerProcess``: starts
                   ``modelmeter serve`` on a free port, waits for ``/healthz``; stops (SIGTERM) every
                   server it started when the test ends.
``free_port``      a free TCP port on 127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ADMIN_KEY, ServerProcess, sqlite_url, write_config
from tests.helpers import free_port as _free_port

# Servers and CLI commands started as subprocesses inherit the admin key (see tests/helpers.py).
os.environ["MODELMETER_ADMIN_KEY"] = ADMIN_KEY


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def free_port() -> int:
    return _free_port()


class ConfigWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.db_path = directory / "modelmeter.db"
        self.count = 0

    def __call__(self, deployments: list[Mapping[str, Any]] | None = None, **server: Any) -> Path:
        self.count += 1
        server.setdefault("database", sqlite_url(self.db_path))
        name = "modelmeter.toml" if self.count == 1 else f"modelmeter-{self.count}.toml"
        return write_config(self.directory / name, deployments=deployments, **server)


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigWriter:
    return ConfigWriter(tmp_path)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(config: str | Path, **kw: Any) -> ServerProcess:
        kw.setdefault("log_dir", tmp_path / f"server-{len(started) + 1}")
        server = ServerProcess(config, **kw)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
