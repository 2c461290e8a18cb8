"""The cloud's HTTP server, really listening on loopback, over services with a
FakeClock: real HTTP clients (httpx) and WebSocket clients (the ``websockets``
library) talk to it, and a test moves the sessions' and throttles' time by hand
instead of sleeping. Several clients may come from different loopback addresses
(127.0.0.2, 127.0.0.3...), which the server sees as different client addresses."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from bench.ports import free_port
from cloud.domain.clock import FakeClock
from cloud.wiring import build_app
from tests.cloud_helpers import seeded
from tests.conftest import check_live_relay


@dataclass
class Served:
    url: str
    svc: object
    seed: object
    clock: FakeClock

    def client(self, address: str = "127.0.0.1") -> httpx.Client:
        """An HTTP client whose connections come from ``address`` (a loopback address)."""
        return httpx.Client(base_url=self.url, transport=httpx.HTTPTransport(local_address=address), timeout=10)

    def login(self, who: tuple[str, str], address: str = "127.0.0.1") -> httpx.Client:
        c = self.client(address)
        r = c.post("/api/auth/login", json={"username": who[0], "password": who[1]})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    def live_feed(self, client: httpx.Client) -> ClientConnection:
        """The console's live feed with that client's session cookie; the snapshot read."""
        cookie = f"pers_session={client.cookies['pers_session']}"
        ws = ws_connect(self.url.replace("http://", "ws://") + "/api/ws", additional_headers={"Cookie": cookie},
                        open_timeout=10)
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        return ws


@pytest.fixture
def served(tmp_path, database_url):
    clock = FakeClock()
    svc, _, seed = seeded(tmp_path, clock, database_url=database_url)
    app = build_app(svc.settings, svc)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on", ws="websockets-sansio"))
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the HTTP server did not start"
        time.sleep(0.02)
    check_live_relay(svc)
    yield Served(f"http://127.0.0.1:{port}", svc, seed, clock)
    server.should_exit = True
    thread.join(timeout=10)
    svc.sm.kw["bind"].dispose()


def closed_code(ws: ClientConnection, timeout: float = 10.0) -> int | None:
    """Read until the server closes the socket; its close code (None: still open at the deadline)."""
    from websockets.exceptions import ConnectionClosed
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                return None
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None
    return None
