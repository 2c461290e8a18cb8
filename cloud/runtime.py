"""Running the whole service in one place: migrations, the embedded broker, the
HTTP server. Used by ``pers serve``, ``pers demo`` and the end-to-end tests."""
from __future__ import annotations

import gc
import logging
import os
import threading
import time
from pathlib import Path

import uvicorn

from cloud.broker import MosquittoBroker
from cloud.platform import BrokerFiles, embedded_broker, prepare, service_password, sync_broker_auth
from cloud.settings import Settings
from cloud.wiring import Services, build_app, build_services, open_store

log = logging.getLogger("pers.runtime")


class Stack:
    """The broker (when embedded) and the cloud app with its HTTP server, in this process."""

    def __init__(self, settings: Settings):
        tune_malloc()  # before any of the service's threads has allocated
        self.settings = settings.model_copy(update={"mqtt_password": service_password(settings)})
        self.broker: MosquittoBroker | None = None
        self.server: uvicorn.Server | None = None
        self.services: Services | None = None
        self._thread: threading.Thread | None = None

    def start_broker(self) -> None:
        if self.settings.broker == "embedded":
            self.broker = embedded_broker(self.settings)
            sync_broker_auth(self.settings, self.broker)
            self.broker.start()
            self.broker.supervise()

    def start_cloud(self, timeout: float = 20.0) -> None:
        # The runtime knows the broker, so it makes the broker port and gives it to the
        # services; the port reads the devices' passwords from the services' database.
        sm = open_store(self.settings)
        self.services = build_services(self.settings, sm=sm,
                                       broker_auth=BrokerFiles(self.settings, self.broker, sm))
        app = build_app(self.settings, self.services)
        config = uvicorn.Config(app, host=self.settings.http_host, port=self.settings.http_port,
                                log_config=None, access_log=False, lifespan="on", ws="websockets-sansio",
                                # X-Forwarded-For is weighed by the app against PERS_TRUSTED_PROXIES
                                # (cloud/api/deps.py: client_address); uvicorn would trust 127.0.0.1's.
                                proxy_headers=False, forwarded_allow_ips="")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start (is the port free? set PERS_HTTP_PORT)")
            time.sleep(0.05)
        if self.services.bridge and not self.services.bridge.connected.wait(timeout):
            raise RuntimeError("the cloud could not connect to the broker")

    def start(self) -> None:
        prepare(self.settings)
        self.start_broker()
        self.start_cloud()

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    def stop_cloud(self) -> None:
        """Stop the HTTP server and the MQTT bridge, keep the broker (fault injection)."""
        if self.server:
            self.server.should_exit = True
            if self._thread:
                self._thread.join(timeout=10)
            self.server = None

    def stop(self) -> None:
        if self.server:
            self.server.should_exit = True
            if self._thread:
                self._thread.join(timeout=10)
        if self.broker:
            self.broker.stop()

    def wait(self) -> None:
        while self._thread and self._thread.is_alive():
            self._thread.join(timeout=0.5)


MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt() parameter number (malloc.h)


def tune_malloc(arenas: int = MALLOC_ARENAS) -> bool:
    """Keep glibc malloc from holding on to freed memory in a long-running service.

    The soak (bench/soak_bench.py) showed RSS climbing ~12 MB in 4 minutes while
    what malloc had in use stayed level: the growth was free memory kept in the
    arenas (measured with cloud/memprobe.py). glibc gives each new thread its
    own arena until there are 8 per core, and an arena keeps what its thread freed
    for that thread only. The service has about ten threads (ingest worker, bulk
    receiver, paho, ticker, HTTP, its thread pool). With at most ``arenas`` the free
    memory is shared and reused (free in the arenas 1-4 MB instead of 3-12 MB after
    4 minutes). Threads hardly contend for an arena: the GIL already serialises most
    allocations.
    The other cause found, the bulk receiver's 256 KiB block per read being shrunk
    in an arena and pinned there, is removed at its source (one reused buffer,
    cloud/mqtt/receiver.py). Fixing glibc's mmap threshold also cured it, but cost
    ~4 % of the ingest CPU in-process (it fixes the trim threshold too), so it is not set.
    Must run before the service's threads start: a thread keeps the arena it was
    given. ``MALLOC_ARENA_MAX`` in the environment is the operator's choice and is
    left alone. False where there is no glibc mallopt (musl, macOS) or it refused."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return True
    try:
        import ctypes
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))


def tune_gc(settings: Settings | None = None) -> None:
    """For the long-running service, after start-up. What start-up built (SQLAlchemy,
    pydantic and FastAPI's ~10^5 long-lived objects) is frozen out of the collector,
    so no collection walks it again: it showed as ~20 % of the ingest CPU, since the
    ingest path allocates ~100 containers per message. The young generation is then
    collected every 10,000 allocations instead of 700; a full collection still comes
    every ~10^6 allocations (about a minute at a few hundred messages a second), so
    cyclic garbage does not pile up (a 50,000 threshold let the soak's RSS creep).
    Reference counting frees everything else at once, as ever."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    from cloud.memprobe import start_memory_probe
    start_memory_probe(settings)  # only with PERS_MEMPROBE; from here its samples are the steady state


def data_dir_of(path: str | Path) -> Path:
    return Path(path).expanduser()
