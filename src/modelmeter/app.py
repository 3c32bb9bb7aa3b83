"""The app factory: wiring only. Nothing here runs at import time.

``/v1/*`` goes straight to the plain-ASGI gateway (the hot path); everything else (the JSON API and
its OpenAPI document at /docs, the web page, health checks) is a FastAPI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator
from typing import cast

from fastapi import FastAPI

from modelmeter import __version__
from modelmeter.alerts.delivery import Notifier
from modelmeter.alerts.engine import AlertEngine
from modelmeter.alerts.upstreams import with_upstreams
from modelmeter.api.alerts import router as alerts_router
from modelmeter.api.errors import install_error_handlers
from modelmeter.api.fleet import router as fleet_router
from modelmeter.api.insights import router as insights_router
from modelmeter.api.keys import router as keys_router
from modelmeter.api.live import LiveHub
from modelmeter.api.metrics import Metrics
from modelmeter.api.metrics import router as metrics_router
from modelmeter.api.panels import router as panels_router
from modelmeter.api.routes import router as api_router
from modelmeter.api.run_import import router as run_import_router
from modelmeter.api.runs import router as runs_router
from modelmeter.api.state import AppState
from modelmeter.api.text_guard import RejectNul
from modelmeter.api.upstreams import router as upstreams_router
from modelmeter.api.user_budgets import router as user_budgets_router
from modelmeter.asgi import ASGIApp, Receive, Scope, Send
from modelmeter.auth.admin import AdminAuth, resolve_admin_key
from modelmeter.auth.keys import KeyStore
from modelmeter.auth.origin import SameOriginGuard
from modelmeter.auth.sessions import resolve_session_secret
from modelmeter.budgets.users import UserBudgets
from modelmeter.config import Settings
from modelmeter.gateway.cors import with_cors
from modelmeter.gateway.guards import foreign_host, is_loopback, refuse_host
from modelmeter.gateway.handler import Gateway
from modelmeter.ops import router as ops_router
from modelmeter.recording.child import ChildConfig
from modelmeter.recording.recorder import Recorder
from modelmeter.recording.remote import RemoteRecorder
from modelmeter.recording.sink import RecordSink
from modelmeter.registry import Registry
from modelmeter.routing.health import UpstreamCollector
from modelmeter.server import sign_in
from modelmeter.storage import maintenance, partitions
from modelmeter.storage.database import Database
from modelmeter.storage.migrations import migrate
from modelmeter.upstreams.client import HTTPUpstream, UpstreamClient
from modelmeter.upstreams.embedded import EmbeddedModels
from modelmeter.upstreams.probe import Probe
from modelmeter.web.docs import install_docs
from modelmeter.web.routes import install_web, warm_plotly

log = logging.getLogger("modelmeter")


def _shown(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class ModelMeterApp:
    """The ASGI entry point: /v1 to the gateway, the rest to the FastAPI app."""

    def __init__(self, gateway: Gateway, api: FastAPI, state: AppState) -> None:
        self.gateway = gateway
        self.api = api
        self.state = state

        # The admin key guards everything but /v1 and the health checks (--no-auth: nothing).
        rest: ASGIApp = (
            AdminAuth(api, lambda: state.admin_hash, lambda: state.session_secret) if state.settings.auth else api
        )
        self.rest: ASGIApp = SameOriginGuard(rest)  # cross-site writes refused, --no-auth too
        self.v1: ASGIApp = with_cors(gateway, state.settings.cors_origins)
        self.loopback_only = is_loopback(state.settings.host)  # then refuse other Host names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.loopback_only and scope["type"] == "http" and (host := foreign_host(scope)):
            await refuse_host(send, host)  # DNS rebinding: a page's own name pointed at 127.0.0.1
        elif scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.v1(scope, receive, send)
        else:
            await self.rest(scope, receive, send)


def _recorder(settings: Settings, db: Database) -> RecordSink:
    """In a process of its own (``recorder = "process"``, what ``serve`` uses) or in threads of this one."""
    # (Another process opens the database by its URL: not an in-memory or URI-named SQLite one.)
    if settings.recorder == "process" and (db.dialect == "postgresql" or db.plain_file):
        config = ChildConfig(
            database=db.url,
            queue_size=settings.queue_size,
            batch_size=settings.batch_size,
            store_bodies=settings.store_bodies,
            log_level=logging.getLogger().getEffectiveLevel(),
            otel=settings.otel,
            retention=settings.retention,
            prune_interval_s=settings.prune_interval_s,
        )
        return RemoteRecorder(config)
    return Recorder(db, maxsize=settings.queue_size, batch_size=settings.batch_size, store_bodies=settings.store_bodies)


def create_app(
    settings: Settings,
    *,
    upstream: UpstreamClient | None = None,
    db: Database | None = None,
    start_embedded: bool = True,
) -> ModelMeterApp:
    db = db or Database(settings.database)
    registry = Registry(db, settings.deployments)
    recorder = _recorder(settings, db)
    remote = isinstance(recorder, RemoteRecorder)
    client = upstream or HTTPUpstream()
    live = LiveHub()
    state = AppState(
        settings=settings,
        db=db,
        registry=registry,
        recorder=recorder,
        live=live,
        probe=Probe(client, registry.base_url),
        embedded=EmbeddedModels(settings.local_threads),
        metrics=Metrics(recorder),
    )
    keys = KeyStore(db)
    state.keys = keys
    state.user_budgets = user_budgets = UserBudgets(db)
    gateway = Gateway(settings, registry, client, recorder, keys if settings.require_keys else None, user_budgets)
    gateway.router = state.router  # one set of breakers: the gateway's, shown and reset through the API
    state.metrics.registry.register(UpstreamCollector(state.router))
    otel = None
    if settings.otel.enabled and not remote:  # (else the recorder process exports; with export off,
        from modelmeter.otel.export import OtelExport  # the SDK is not even loaded)

        otel = OtelExport(settings.otel)
        cast(Recorder, recorder).on_finish(otel.observe)
    notifier = Notifier(db)
    alerts = state.alerts = AlertEngine(
        db,
        settings.alerts,
        notifier,
        base_url=settings.public_url or f"http://{_shown(settings.host)}:{settings.port}",
        interval=settings.alert_interval,
        measure_fn=with_upstreams(state.router),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # In the background: the first visit to a model page must not wait for it (nor startup).
        threading.Thread(target=warm_plotly, name="plotly-gzip", daemon=True).start()
        await asyncio.to_thread(migrate, db)
        await asyncio.to_thread(partitions.ensure_ahead, db)  # before the first record (PostgreSQL)
        await asyncio.to_thread(registry.load)
        if settings.auth:
            admin = await asyncio.to_thread(resolve_admin_key, db, settings.admin_key)
            state.session_secret = await asyncio.to_thread(resolve_session_secret, db)
            state.admin_hash = admin.hash
            if admin.generated:
                # Shown once, like Jupyter's token: only its hash is stored.
                print(
                    f"modelmeter: generated an admin key. Open the dashboard with\n"
                    f"    http://{_shown(settings.host)}:{settings.port}/?token={admin.generated}\n"
                    "  (API: Authorization: Bearer <key>; set MODELMETER_ADMIN_KEY to choose your own)",
                    file=sys.stderr,
                    flush=True,
                )
            else:
                print(
                    sign_in.reminder(f"http://{_shown(settings.host)}:{settings.port}/", bool(settings.admin_key)),
                    file=sys.stderr,
                    flush=True,
                )
        live.bind(asyncio.get_running_loop())
        recorder.add_listener(live.publish, whole=True)
        if remote:
            live.on_change = cast(RemoteRecorder, recorder).watch
        recorder.add_listener(state.metrics.observe)
        recorder.add_listener(keys.observe)
        recorder.add_listener(user_budgets.observe)
        await asyncio.to_thread(keys.load)
        await asyncio.to_thread(user_budgets.load)
        recorder.start()
        if start_embedded:
            for dep in registry.all():
                if dep.is_local:
                    await state.ensure_local(dep)
        # (The recorder process does the storage upkeep itself: off this process's core.)
        upkeep = None if remote else maintenance.start(db, settings.retention, settings.prune_interval_s)
        refresher = asyncio.create_task(registry.refresh_forever())
        alerting = asyncio.create_task(alerts.run_forever())  # webhooks go out in their own tasks
        shared = None
        if settings.redis:  # upstream cooldowns shared with the other workers and replicas
            from modelmeter.routing.shared import SharedBreakers

            shared = SharedBreakers(settings.redis, state.router, registry)
            await shared.start()
        try:
            yield
        finally:
            if upkeep is not None:
                upkeep.set()
            refresher.cancel()
            alerting.cancel()
            if shared is not None:
                await shared.stop()
            await notifier.drain()
            await notifier.close()
            # In-flight requests are done by now (the server drains them first): flush and stop.
            await asyncio.to_thread(recorder.stop)
            if otel is not None:
                await asyncio.to_thread(otel.shutdown)  # after the recorder: every record's span is out
            await client.close()
            await asyncio.to_thread(state.embedded.stop)
            if upkeep is None or await asyncio.to_thread(upkeep.stop):
                db.close()
            else:  # (closing its connection under its query could crash the process: left to the exit)
                log.warning("the storage upkeep is still running; the database is left open")

    api = FastAPI(
        title="modelmeter",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Usage API of the modelmeter gateway. The OpenAI-compatible endpoints live under /v1.",
    )
    api.state.mm = state
    install_error_handlers(api)
    api.add_middleware(RejectNul)
    api.include_router(fleet_router)
    api.include_router(insights_router)  # before api_router: its /deployments/{name:path} takes any path
    api.include_router(panels_router)  # (the same)
    api.include_router(api_router)
    api.include_router(keys_router)
    api.include_router(alerts_router)
    api.include_router(run_import_router)
    api.include_router(runs_router)
    api.include_router(user_budgets_router)
    api.include_router(ops_router)
    api.include_router(metrics_router)
    api.include_router(upstreams_router)
    install_web(api)
    install_docs(api)
    return ModelMeterApp(gateway, api, state)
