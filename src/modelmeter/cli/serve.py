"""``modelmeter serve``: the gateway, the API and the web page in one process (or N workers)."""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

import click
import orjson

from modelmeter.config import ConfigError, Settings, load_settings
from modelmeter.gateway.guards import is_loopback
from modelmeter.server import reuseport

if TYPE_CHECKING:
    from modelmeter.server.limits import Limits

_ENV = "MODELMETER_SERVE_SETTINGS"


class ServeError(click.ClickException):
    """A one-line reason serve cannot start (bad port, port in use, bad config); exit code 2."""

    exit_code = 2


def _settings(
    config: str | None,
    host: str | None,
    port: int | None,
    database: str | None,
    threads: int | None,
    no_auth: bool = False,
    recorder: str | None = None,
) -> Settings:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise ServeError(str(exc)) from None
    settings = settings.with_overrides(host=host, port=port, database=database, local_threads=threads)
    settings = settings.with_overrides(recorder=recorder or settings.recorder or "process")
    if no_auth:
        if not is_loopback(settings.host):
            raise ServeError(
                f"--no-auth is for local development: it refuses to listen on "
                f"{settings.host}, which is not a loopback address"
            )
        settings = settings.with_overrides(auth=False)
    return settings


def app_from_env() -> object:
    """Factory for uvicorn's worker processes (``--workers N``): settings come through the env."""
    from modelmeter.app import create_app
    from modelmeter.server.limits import LimitedHttpTools

    opts = orjson.loads(os.environ[_ENV])
    settings = _settings(
        opts["config"], opts["host"], opts["port"], opts["database"], opts["threads"], opts["no_auth"], opts["recorder"]
    )
    app = create_app(settings)
    LimitedHttpTools.configure(limits_of(settings))
    if not any(d.is_local for d in settings.deployments):  # embedded models want every core
        pin_worker(int(opts.get("workers") or 0))
    tune_gc()
    return app


def pin_worker(workers: int) -> None:
    """With ``--workers N`` and at least N cores, keep each worker process on a core of its own.

    A worker's event loop and its recorder threads share one GIL; left to float over all cores the
    threads hand it back and forth between cores, and a single worker did ~35% fewer requests/s
    for more CPU per request than the same worker kept on one core (benchmarks/overhead.py:
    3,342 vs 5,162 JSON calls/s). uvicorn names its workers SpawnProcess-1, -2, …; a restarted
    worker takes the next number (and so may share a core with another)."""
    import multiprocessing

    number = multiprocessing.current_process().name.rsplit("-", 1)[-1]
    if not number.isdigit() or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if workers < 2 or workers > len(cores):
        return
    os.sched_setaffinity(0, {cores[(int(number) - 1) % len(cores)]})


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the hot path (measured with benchmarks/overhead.py).

    What is loaded by now (the app, FastAPI's models, the price data) lives as long as the process:
    frozen, collections no longer walk it. A call's own objects are freed by reference counting;
    with the default threshold (700) their churn alone triggered a young collection every ~30 calls,
    each promoting the in-flight calls' objects and so on into full collections of the whole heap:
    ~35 µs a call in all. At 10,000 a young collection is rare and still short."""
    from genai_prices import data_snapshot

    data_snapshot.get_snapshot()  # load the price data now, not on the first record
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


@click.command()
@click.option("--config", "-c", type=click.Path(dir_okay=False), help="TOML config file.")
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", "-p", type=int, help="Port (default 8000).")
@click.option("--database", help="sqlite:///FILE or postgresql://user@host:5432/db.")
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes sharing the port."
)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the embedded models.")
@click.option("--no-auth", is_flag=True, help="No admin key (local development; loopback addresses only).")
@click.option(
    "--recorder",
    type=click.Choice(["process", "thread"]),
    help="Price and store records in a process of their own (default) or in threads of the gateway's.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(
    config: str | None,
    host: str | None,
    port: int | None,
    database: str | None,
    workers: int,
    threads: int | None,
    no_auth: bool,
    recorder: str | None,
    log_level: str,
) -> None:
    """Start the gateway (/v1), the usage API (/api, /docs) and the dashboard (/)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from modelmeter.server.limits import LimitedHttpTools

    if port is not None and not 0 <= port <= 65535:
        raise ServeError(f"--port must be from 0 (any free port) to 65535, not {port}")
    settings = _settings(config, host, port, database, threads, no_auth, recorder)
    # Bind before anything starts: a bad or busy port fails here, before a model loads or a link prints.
    sock = listen(settings.host, settings.port)
    raise_fd_limit()
    settings = settings.with_overrides(port=sock.getsockname()[1])  # port 0: the one the OS chose
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    shown_host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    click.echo(
        f"modelmeter: gateway at http://{shown_host}:{settings.port}/v1, "
        f"dashboard at http://{shown_host}:{settings.port}/, database {_safe(settings.database)}",
        err=True,
    )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level,
        "access_log": False,
        "loop": "uvloop",
        "http": LimitedHttpTools,
        "timeout_graceful_shutdown": 30,
    }
    if workers > 1:
        os.environ[_ENV] = orjson.dumps(
            {
                "config": config,
                "host": host,
                "port": settings.port,
                "database": database,
                "threads": threads,
                "no_auth": no_auth,
                "recorder": recorder,
                "workers": workers,
            }
        ).decode()
        conf = uvicorn.Config("modelmeter.cli.serve:app_from_env", factory=True, workers=workers, **common)
        if reuseport.available():  # a listening socket per worker: see server.reuseport
            try:
                sock = reuseport.reserve(sock)
            except OSError as exc:
                raise ServeError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises SIGINT once it has stopped
            Multiprocess(conf, sockets=[sock]).run()
        return
    from modelmeter.app import create_app

    try:
        app = create_app(settings)
    except ValueError as exc:
        raise ServeError(str(exc)) from None
    LimitedHttpTools.configure(limits_of(settings))
    tune_gc()
    # uvicorn re-raises SIGTERM after its graceful shutdown; a drained, flushed stop is a success.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = uvicorn.Server(uvicorn.Config(app, **common))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises SIGINT once it has stopped
        server.run(sockets=[sock])
    sys.exit(0 if server.started else 3)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound now (uvicorn serves on it); ServeError in one line if it cannot be."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError, OverflowError) as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc}") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "the port is in use (is another server running?)" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ServeError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)  # --workers: the worker processes serve on it
    return sock


def raise_fd_limit(most: int = 1 << 20) -> None:
    """Open files up to the hard limit: each connection is one, and a soft limit of 1,024 (a common
    default) would let four clients at their connection cap take them all."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = most if hard == resource.RLIM_INFINITY else min(hard, most)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def limits_of(settings: Settings) -> Limits:
    from modelmeter.server.limits import Limits

    return Limits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections_per_client=settings.max_connections_per_client,
    )


def _safe(url: str) -> str:
    """The database URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url
