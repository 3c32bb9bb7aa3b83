"""Upstream cooldowns shared between processes through Redis (``[server] redis``).

Each process keeps its breakers in memory (the hot path never waits on Redis). A breaker that
changes state (cooling, out, healthy again, an operator's reset) is published: written to one hash
(so a process that starts later adopts what is in force) and announced on a channel, which every
other process listens to and adopts. Publishing is a background task; with Redis away, routing
goes on per process and the outage is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis

from modelmeter.routing.pool import Pool, Router

if TYPE_CHECKING:
    from modelmeter.registry import Registry

CHANNEL = "modelmeter:upstreams"
STATE_KEY = "modelmeter:upstreams:state"
STATE_TTL_S = 86400  # the hash outlives any cooldown; "out" upstreams are re-announced on change
log = logging.getLogger("modelmeter.routing")


class SharedBreakers:
    def __init__(self, url: str, router: Router, registry: Registry) -> None:
        self.url = url
        self.router = router
        self.registry = registry
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # our own announcements are skipped
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._failing = False

    async def start(self) -> None:
        self._redis = aioredis.Redis.from_url(self.url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.router.on_change = self._changed
        await self._load()
        self._listener = asyncio.create_task(self._listen_forever())

    async def stop(self) -> None:
        self.router.on_change = None
        if self._listener is not None:
            self._listener.cancel()
        if self._pending:
            await asyncio.wait(self._pending, timeout=2.0)
        if self._redis is not None:
            await self._redis.aclose()

    def _changed(self, deployment: str, pool: Pool, i: int) -> None:
        """A breaker changed here (on the event loop): publish it in the background."""
        b = pool.breakers[i]
        item = {
            "deployment": deployment,
            "upstream": pool.upstreams[i].label,
            "state": b.state,
            "until": b.until,
            "error": b.last_error,
            "origin": self.origin,
        }
        task = asyncio.get_running_loop().create_task(self._publish(item))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, item: dict[str, Any]) -> None:
        data = orjson.dumps(item)
        field = f"{item['deployment']}\x00{item['upstream']}"
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hset(STATE_KEY, field, data)
                pipe.expire(STATE_KEY, STATE_TTL_S)
                pipe.publish(CHANNEL, data)
                await pipe.execute()
            self._ok()
        except Exception as exc:  # Redis away: this process still routes on its own breakers
            self._down(exc)

    async def _load(self) -> None:
        try:
            stored = await self._redis.hgetall(STATE_KEY)
            self._ok()
        except Exception as exc:
            self._down(exc)
            return
        for data in stored.values():
            self._adopt(data)

    async def _listen_forever(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    await self._load()  # what changed while we were not listening
                    while True:
                        message = await pubsub.get_message(timeout=5.0)
                        if message is not None and message.get("type") == "message":
                            self._adopt(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._down(exc)
                await asyncio.sleep(1.0)

    def _adopt(self, data: bytes) -> None:
        try:
            item = orjson.loads(data)
            if item.get("origin") == self.origin:
                return
            dep = self.registry.get(item["deployment"])
            if dep is None or not dep.upstreams:
                return
            pool = self.router.pool(dep)
            for up, breaker in zip(pool.upstreams, pool.breakers, strict=True):
                if up.label == item["upstream"]:
                    breaker.adopt(str(item["state"]), float(item["until"]), item.get("error"))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignored a malformed upstream state on %s", CHANNEL)

    def _ok(self) -> None:
        if self._failing:
            log.info("Redis reachable again: upstream cooldowns are shared")
        self._failing = False

    def _down(self, exc: Exception) -> None:
        if not self._failing:
            log.warning(
                "Redis unreachable (%s): upstream cooldowns are per process until it is back", type(exc).__name__
            )
        self._failing = True
