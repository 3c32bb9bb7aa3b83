"""What ``POST /api/runs`` takes to start a run on the server, checked, and turned into the
runner's own configuration (the same ``BenchConfig`` / ``EvalConfig`` the CLI builds). A sweep is
a benchmark at each of several load levels: one bench run per level (:mod:`modelmeter.runs.sweep`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelmeter.bench import load
from modelmeter.bench.datasets import BUNDLED
from modelmeter.bench.eval import EvalConfig
from modelmeter.bench.grading import MATCHES
from modelmeter.bench.runner import BenchConfig

DATASETS = ("arithmetic", "arc_agi_subset")  # the bundled sets the server knows: the form offers these
Dataset = Literal["arithmetic", "arc_agi_subset"]
assert set(Dataset.__args__) == set(DATASETS) == set(BUNDLED)  # type: ignore[attr-defined]
Grader = Literal["exact", "contains", "regex", "number", "choice", "json_schema", "grid"]
assert set(Grader.__args__) == set(MATCHES)  # type: ignore[attr-defined]


class Slos(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttft: float | None = Field(None, gt=0, le=3_600_000, description="Goodput: TTFT at most this, ms")
    tpot: float | None = Field(None, gt=0, le=3_600_000, description="Goodput: TPOT at most this, ms")
    e2e: float | None = Field(None, gt=0, le=3_600_000, description="Goodput: latency at most this, ms")


MAX_LEVELS = 12


class RunStart(BaseModel):
    """A benchmark (load shape, lengths, warm-up, SLOs), an eval (data set, grader), or a sweep
    (a benchmark's fields, run once per level of ``levels``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["bench", "eval", "sweep"]
    model: str = Field(min_length=1, max_length=200, description="The deployment to run against")
    endpoint: Literal["chat", "completions"] = "chat"
    stream: bool = True
    api_key: str | None = Field(
        None, max_length=400, repr=False, description="A virtual key for /v1 when the server requires one (not stored)"
    )
    concurrency: int | None = Field(None, ge=1, le=256, description="Requests in flight at most")
    # bench
    requests: int | None = Field(None, ge=1, le=100_000)
    duration_s: float | None = Field(None, gt=0, le=3600)
    rate: float | None = Field(None, gt=0, le=1000, description="Poisson arrivals, requests/s")
    input_tokens: int = Field(128, ge=1, le=32_768)
    output_tokens: int = Field(128, ge=1, le=32_768)
    warmup: int = Field(0, ge=0, le=100)
    slos_ms: Slos | None = None
    seed: int = Field(0, ge=0, le=2**31)
    # sweep
    sweep_by: Literal["concurrency", "rate"] = Field("concurrency", description="sweep: what the levels are")
    levels: list[float] | None = Field(
        None,
        min_length=1,
        max_length=MAX_LEVELS,
        description="sweep: concurrencies (whole, 1-256) or request rates (req/s, up to 1000), one bench run each",
    )
    # eval
    dataset: Dataset = Field("arithmetic", description="A bundled evaluation set")
    grader: Grader | None = Field(None, description="Grade every item this way (default: each item's own)")
    tolerance: float | None = Field(None, ge=0, description="With grader number: absolute tolerance")
    max_tokens: int = Field(64, ge=1, le=32_768, description="eval: max_tokens of each answer")

    @model_validator(mode="after")
    def _bench_shape(self) -> RunStart:
        if self.kind in ("bench", "sweep") and self.requests is None and self.duration_s is None:
            self.requests = 50
        if self.kind == "sweep":
            self._check_levels()
        elif self.levels is not None:
            raise ValueError("'levels' is for a sweep (kind 'sweep')")
        return self

    def _check_levels(self) -> None:
        if not self.levels:
            raise ValueError("a sweep needs 'levels': e.g. [1, 2, 4, 8]")
        for v in self.levels:
            if self.sweep_by == "concurrency" and not (v == int(v) and 1 <= v <= 256):
                raise ValueError(f"concurrency levels must be whole numbers from 1 to 256 (got {v:g})")
            if self.sweep_by == "rate" and not 0 < v <= 1000:
                raise ValueError(f"rate levels must be above 0 and at most 1000 req/s (got {v:g})")

    def point(self, level: float) -> RunStart:
        """The bench run of one level of a sweep."""
        load = {"concurrency": int(level), "rate": None} if self.sweep_by == "concurrency" else {"rate": level}
        return self.model_copy(update={"kind": "bench", "levels": None, **load})

    def sweep_params(self) -> dict[str, object]:
        levels = ", ".join(f"{v:g}" for v in self.levels or [])
        each = f"{self.requests} requests" if self.requests is not None else f"{self.duration_s:g} s"
        return {
            "model": self.model,
            "endpoint": self.endpoint,
            "stream": self.stream,
            "sweep_by": self.sweep_by,
            "levels": self.levels,
            "load": f"{'concurrency' if self.sweep_by == 'concurrency' else 'rate'} {levels}; {each} each",
            "requests": self.requests,
            "duration_s": self.duration_s,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }

    def bench_config(self, run_id: str, base_url: str, api_key: str | None) -> BenchConfig:
        shape = load.Shape(
            requests=self.requests,
            duration=self.duration_s,
            concurrency=self.concurrency if self.concurrency is not None or self.rate is not None else 1,
            rate=self.rate,
            seed=self.seed,
        )
        slos = {k: v for k, v in (self.slos_ms.model_dump() if self.slos_ms else {}).items() if v is not None}
        return BenchConfig(
            model=self.model,
            run_id=run_id,
            base_url=base_url,
            api_key=api_key,
            endpoint=self.endpoint,
            stream=self.stream,
            shape=shape,
            warmup=self.warmup,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            slos=slos,
            progress=False,
            seed=self.seed,
        )

    def eval_config(self, run_id: str, base_url: str, api_key: str | None) -> EvalConfig:
        return EvalConfig(
            model=self.model,
            run_id=run_id,
            base_url=base_url,
            api_key=api_key,
            dataset=self.dataset,
            endpoint=self.endpoint,
            concurrency=self.concurrency or 4,
            max_tokens=self.max_tokens,
            stream=self.stream,
            progress=False,
            grader=self.grader,
            tolerance=self.tolerance,
        )
