"""Load shapes: N requests at a fixed concurrency, Poisson arrivals at a rate, a duration, Ctrl-C."""

from __future__ import annotations

import asyncio
import time

import pytest

from modelmeter.bench import load
from modelmeter.bench.metrics import RequestResult


class FakeSend:
    """Answers after ``delay`` seconds; tracks how many are in flight at most."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.sent: list[float] = []

    async def __call__(self, i: int) -> RequestResult:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.sent.append(time.perf_counter())
        start = time.perf_counter()
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return RequestResult(ok=True, start=start, e2e=time.perf_counter() - start, index=i)


async def test_exactly_n_at_a_fixed_concurrency() -> None:
    send = FakeSend(0.01)
    seen: list[RequestResult] = []
    out = await load.run(load.Shape(requests=40, concurrency=4), send, seen.append)
    assert len(out.results) == 40 == len(seen) and send.peak == 4
    assert sorted(r.index for r in out.results) == list(range(40))
    assert 0.09 <= out.duration < 0.5 and not out.interrupted


async def test_concurrency_above_requests() -> None:
    send = FakeSend(0.01)
    out = await load.run(load.Shape(requests=3, concurrency=50), send, lambda r: None)
    assert len(out.results) == 3 and send.peak == 3


async def test_duration_stops_sending_and_waits_for_those_in_flight() -> None:
    send = FakeSend(0.05)
    out = await load.run(load.Shape(duration=0.2, requests=None, concurrency=2), send, lambda r: None)
    assert 6 <= len(out.results) <= 10  # 2 workers x 0.2 s / 0.05 s, the last ones finished
    assert send.in_flight == 0 and 0.2 <= out.duration < 0.4


async def test_rate_is_poisson_and_seeded() -> None:
    async def arrivals(seed: int) -> list[float]:
        send = FakeSend(0.001)
        out = await load.run(load.Shape(requests=60, rate=200.0, concurrency=None, seed=seed), send, lambda r: None)
        assert len(out.results) == 60
        t0 = send.sent[0]
        return [t - t0 for t in send.sent]

    a, b, c = await arrivals(1), await arrivals(1), await arrivals(2)
    # 59 gaps of mean 5 ms: about 0.3 s; the same seed gives the same schedule
    assert 0.15 < a[-1] < 0.6
    assert all(abs(x - y) < 0.02 for x, y in zip(a, b, strict=True))
    assert any(abs(x - y) > 0.005 for x, y in zip(a, c, strict=True))


async def test_rate_with_a_concurrency_cap() -> None:
    send = FakeSend(0.05)
    out = await load.run(load.Shape(requests=20, rate=1000.0, concurrency=3), send, lambda r: None)
    assert len(out.results) == 20 and send.peak == 3


async def test_stop_interrupts() -> None:
    send = FakeSend(0.05)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.12, stop.set)
    out = await load.run(load.Shape(requests=1000, concurrency=2), send, lambda r: None, stop)
    assert out.interrupted and 2 <= len(out.results) <= 8 and send.in_flight == 0


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("2m", 120), ("1.5h", 5400), ("500ms", 0.5), ("5", 5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert load.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "0s", "-5s", "5d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        load.parse_duration(text)
