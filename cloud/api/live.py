"""The live feed: domain events fanned out to the WebSocket clients of one tenant.

The domain publishes from any thread (the MQTT ingest worker, API threads);
delivery happens on the event loop that serves the WebSockets."""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

log = logging.getLogger("pers.live")


class LiveHub:
    def __init__(self, max_backlog: int = 1000):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.max_backlog = max_backlog
        self._clients: dict[int, set[asyncio.Queue]] = defaultdict(set)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def publish(self, tenant_id: int, event: dict) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self._fanout, tenant_id, event)

    def _fanout(self, tenant_id: int, event: dict) -> None:
        for q in list(self._clients.get(tenant_id, ())):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                # A stalled console gets a resync marker instead of an unbounded backlog.
                log.warning("live client too slow; asking it to resync", extra={"tenant_id": tenant_id})
                while not q.empty():
                    q.get_nowait()
                q.put_nowait({"type": "resync"})

    def subscribe(self, tenant_id: int) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=self.max_backlog)
        self._clients[tenant_id].add(q)
        return q

    def unsubscribe(self, tenant_id: int, q: asyncio.Queue) -> None:
        self._clients[tenant_id].discard(q)

    def client_count(self) -> int:
        return sum(len(v) for v in self._clients.values())

    def publish_all(self, event: dict) -> None:
        """To every connected console of every tenant (e.g. "resync" after a gap)."""
        for tenant_id in list(self._clients):
            self.publish(tenant_id, event)
