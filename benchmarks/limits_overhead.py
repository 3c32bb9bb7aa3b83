#!/usr/bin/env python3
"""CPU per request of the connection limits (src/modelmeter/server/limits.py), in process.

    PYTHONPATH=src python benchmarks/limits_overhead.py

Feeds the same keep-alive POST, whole in one read, N times into uvicorn's ``HttpToolsProtocol`` and into
``LimitedHttpTools`` (a fake transport; a trivial ASGI app that answers at once) and prints the median
and best of 7 rounds of process CPU per request. What differs is only the protocol's own work: this is
the limits' share of the gateway's CPU per request (about 0.15-0.2 ms with benchmarks/overhead.py).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from modelmeter.server.limits import LimitedHttpTools

BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"authorization: Bearer x\r\ncontent-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def per_request_us(cls: type[HttpToolsProtocol], n: int) -> float:
    config = uvicorn.Config(app, http=cls, log_level="warning", lifespan="off")
    config.load()
    state = ServerState()
    protocol = cls(config, state, {}, _loop=asyncio.get_running_loop())
    protocol.connection_made(Transport())
    for i in range(n + 200):  # the first 200 warm up
        if i == 200:
            began = time.process_time()
        protocol.data_received(REQUEST)
        while state.tasks:
            await asyncio.sleep(0)
    return (time.process_time() - began) / n * 1e6


async def main(n: int = 20_000, rounds: int = 7) -> None:
    results: dict[str, list[float]] = {"uvicorn HttpToolsProtocol": [], "LimitedHttpTools": []}
    for _ in range(rounds):
        results["uvicorn HttpToolsProtocol"].append(await per_request_us(HttpToolsProtocol, n))
        results["LimitedHttpTools"].append(await per_request_us(LimitedHttpTools, n))
    for name, values in results.items():
        print(f"{name:<26} {statistics.median(values):6.2f} µs/request (best {min(values):.2f})")


if __name__ == "__main__":
    asyncio.run(main())
