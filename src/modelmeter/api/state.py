"""What the API routes share: the parts the app factory wired together."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelmeter.alerts.engine import AlertEngine
from modelmeter.api.live import LiveHub
from modelmeter.api.metrics import Metrics
from modelmeter.auth.keys import KeyStore
from modelmeter.budgets.users import UserBudgets
from modelmeter.config import Deployment, Settings
from modelmeter.recording.sink import RecordSink
from modelmeter.registry import Registry
from modelmeter.routing.pool import Router
from modelmeter.runs.manager import RunManager
from modelmeter.storage.database import Database
from modelmeter.upstreams.embedded import EmbeddedModels
from modelmeter.upstreams.probe import Probe
from modelmeter.usage.rollup_reads import BinsCache, PercentileCache
from modelmeter.usage.top_breakdowns import TopCache


@dataclass
class AppState:
    settings: Settings
    db: Database
    registry: Registry
    recorder: RecordSink
    live: LiveHub
    probe: Probe
    embedded: EmbeddedModels
    metrics: Metrics
    keys: KeyStore | None = None
    alerts: AlertEngine | None = None
    user_budgets: UserBudgets | None = None
    router: Router = field(default_factory=Router)  # routed deployments' upstreams and breakers
    percentiles: PercentileCache = field(default_factory=PercentileCache)  # of past chart buckets
    histograms: BinsCache = field(default_factory=BinsCache)  # merged histograms of past rollup ranges
    top_values: TopCache = field(default_factory=TopCache)  # summed hours of the top-N breakdowns
    admin_hash: str | None = None  # set at start-up; None until then (auth answers 503)
    session_secret: str | None = None  # signs session cookies (auth.sessions); set at start-up
    run_manager: RunManager | None = None  # server-side runs (api.runs), made at the first one

    async def ensure_local(self, dep: Deployment) -> None:
        base = await self.embedded.astart(dep)
        self.registry.set_local_base(dep.model, base)
