"""Running the whole service in one place: migrations, the embedded broker, the
HTTP server. Used by ``pers serve``, ``pers demo`` and the end-to-end tests."""
from __future__ import annotations

import gc
import logging
import os
import secrets
import threading
import time
from pathlib import Path

import uvicorn

from cloud.api.app import Services, build_services, create_app
from cloud.broker import Credential, MosquittoBroker
from cloud.domain.accounts import broker_credentials
from cloud.domain.security import mosquitto_hash
from cloud.settings import Settings
from cloud.store.db import make_engine, make_sessionmaker
from cloud.store.migrate import upgrade

log = logging.getLogger("pers.runtime")


def prepare(settings: Settings) -> None:
    """Create the data directory and bring the schema to the latest migration."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)


def service_password(settings: Settings) -> str:
    """The cloud's broker password: from settings, or generated once into the data dir."""
    if settings.mqtt_password:
        return settings.mqtt_password
    path = settings.data_dir / "broker" / "service.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def embedded_broker(settings: Settings) -> MosquittoBroker:
    return MosquittoBroker(settings.data_dir, host=settings.mqtt_host, port=settings.mqtt_port,
                           service_accounts=settings.mqtt_service_accounts())


def sync_broker_auth(settings: Settings, broker: MosquittoBroker | None = None, sm=None) -> None:
    """Rewrite the broker's password file and ACL from the database, then reload it.

    The reload (SIGHUP) also disconnects a connected device whose password no
    longer matches (a rotated secret). With an external broker the files are
    written under the data directory for deployment and nothing is signalled."""
    broker = broker or embedded_broker(settings)
    if sm is None:
        engine = make_engine(settings.db_url)
        sm = make_sessionmaker(engine)
    secret = mosquitto_hash(service_password(settings))
    creds = [Credential(user, secret) for user in settings.mqtt_service_accounts()]
    creds += [Credential(dev, h) for dev, h in broker_credentials(sm)]
    broker.write_files(creds)
    broker.reload()


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
        self.services = build_services(self.settings)
        app = create_app(self.settings, services=self.services)
        config = uvicorn.Config(app, host=self.settings.http_host, port=self.settings.http_port,
                                log_config=None, access_log=False, lifespan="on", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start (is the port free? set PERS_HTTP_PORT)")
            time.sleep(0.05)
        if self.services.broker_auth is not None:
            # Provisioning and rotation through the API rewrite and reload the broker's files.
            self.services.broker_auth.target = lambda: sync_broker_auth(self.settings, self.broker,
                                                                        sm=self.services.sm)
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
    arenas (measured with the memory probe below). glibc gives each new thread its
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


def tune_gc() -> None:
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
    start_memory_probe()  # only with PERS_MEMPROBE; from here its samples are the steady state


def start_memory_probe(path: str | None = None, interval_s: float | None = None) -> "_MemoryProbe | None":
    """``PERS_MEMPROBE=<file>``: every ``PERS_MEMPROBE_S`` seconds (default 5), append
    one JSON line of where this process's memory is, so that a soak can tell which
    part of its RSS moves: the Python heap (allocated blocks, and with
    ``PERS_TRACEMALLOC=<frames>`` the traced bytes and the top growing call sites
    since the probe started), glibc malloc (in use, free but kept, per arena mmap),
    SQLite's own allocator (its page caches), and the mappings (anonymous, file,
    the database's -shm). Off by default; without tracemalloc it costs a few
    milliseconds per sample (``gc.get_objects`` once every 6 samples)."""
    path = path or os.environ.get("PERS_MEMPROBE")
    if not path:
        return None
    interval_s = interval_s or float(os.environ.get("PERS_MEMPROBE_S", "5"))
    frames = int(os.environ.get("PERS_TRACEMALLOC", "0") or 0)
    probe = _MemoryProbe(Path(path), interval_s, frames)
    threading.Thread(target=probe.run, name="memprobe", daemon=True).start()
    return probe


class _MemoryProbe:
    def __init__(self, path: Path, interval_s: float, frames: int):
        import ctypes
        import ctypes.util
        self.path, self.interval_s, self.frames = path, interval_s, frames
        self._libc = ctypes.CDLL(None)
        self._sqlite = None
        try:
            # The same library the sqlite3 module is linked against (already loaded).
            import _sqlite3  # noqa: F401
            self._sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
            self._sqlite.sqlite3_memory_used.restype = ctypes.c_int64
            self._sqlite.sqlite3_memory_highwater.restype = ctypes.c_int64
        except OSError:
            self._sqlite = None

        class _Mallinfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                        "fsmblks", "uordblks", "fordblks", "keepcost")]
        self._mallinfo2 = getattr(self._libc, "mallinfo2", None)
        if self._mallinfo2 is not None:
            self._mallinfo2.restype = _Mallinfo2
        self._baseline = None
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        import json
        import tracemalloc
        if self.frames:
            tracemalloc.start(self.frames)
            self._baseline = tracemalloc.take_snapshot()
        t0 = time.monotonic()
        n = 0
        while not self._stop.wait(self.interval_s):
            n += 1
            try:
                row = self.sample(time.monotonic() - t0, objects=n % 6 == 0)
                with open(self.path, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
            except Exception:  # noqa: BLE001 (a diagnostic must never take the service down)
                log.exception("memory probe failed")

    def arenas(self) -> list[list[float]]:
        """[MB obtained from the system, MB free in it] per malloc arena (the first is
        the main one, the others are the threads'), from glibc's malloc_info."""
        import ctypes
        import re
        import tempfile
        libc = self._libc
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        with tempfile.NamedTemporaryFile("r", suffix=".xml") as tmp:
            fp = libc.fopen(tmp.name.encode(), b"w")
            if not fp:
                return []
            libc.malloc_info(0, fp)
            libc.fclose(fp)
            xml = tmp.read()
        out = []
        for heap in re.findall(r'<heap nr="\d+">(.*?)</heap>', xml, re.S):
            free = sum(int(x) for x in re.findall(r'<total type="(?:fast|rest)" count="\d+" size="(\d+)"', heap))
            cur = re.search(r'<system type="current" size="(\d+)"', heap)
            out.append([round(int(cur.group(1)) / 2**20, 2) if cur else None, round(free / 2**20, 2)])
        return out

    def sample(self, t: float, objects: bool) -> dict:
        import sys
        import tracemalloc
        mb = 2 ** 20
        row: dict = {"t": round(t, 1), "py_blocks": sys.getallocatedblocks()}
        row.update(_smaps())
        row["sqlite_conns"] = _sqlite_connections()
        if self._mallinfo2 is not None:
            mi = self._mallinfo2()
            row.update(malloc_in_use_mb=round((mi.uordblks + mi.hblkhd) / mb, 2),
                       malloc_free_mb=round(mi.fordblks / mb, 2), malloc_mmapped_mb=round(mi.hblkhd / mb, 2),
                       malloc_arena_mb=round(mi.arena / mb, 2))
        if self._sqlite is not None:
            row.update(sqlite_mb=round(self._sqlite.sqlite3_memory_used() / mb, 2),
                       sqlite_highwater_mb=round(self._sqlite.sqlite3_memory_highwater(0) / mb, 2))
        if objects:
            counts: dict[str, int] = {}
            for o in gc.get_objects():  # not the frozen start-up objects: what came after
                k = type(o).__name__
                counts[k] = counts.get(k, 0) + 1
            row["gc_objects"] = sum(counts.values())
            row["gc_top"] = sorted(counts.items(), key=lambda kv: -kv[1])[:15]
            row["arenas"] = self.arenas()
        if tracemalloc.is_tracing():
            cur, peak = tracemalloc.get_traced_memory()
            row.update(traced_mb=round(cur / mb, 2), traced_peak_mb=round(peak / mb, 2))
            if objects and self._baseline is not None:
                snap = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)])
                diff = snap.compare_to(self._baseline, "traceback")
                row["traced_growth"] = [[round(d.size_diff / 1024, 1), d.count_diff,
                                         " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}"
                                                     for f in d.traceback)]
                                        for d in diff[:12]]
        return row


def _sqlite_connections() -> int:
    """Open SQLite connections: each holds its database file open once."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        n += target.endswith(".db") or target.endswith(".sqlite")
    return n


def _smaps() -> dict:
    """Resident MB per kind of mapping, from /proc/self/smaps."""
    out = {"rss_mb": 0.0, "anon_mb": 0.0, "heap_mb": 0.0, "anon_mmap_mb": 0.0, "file_mb": 0.0, "shm_mb": 0.0,
           "anon_maps": 0}
    name, kb = "", 0
    try:
        fh = open("/proc/self/smaps")
    except OSError:
        return {}
    with fh:
        for line in fh:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif first == "Rss:":
                kb = int(line.split()[1])
                out["rss_mb"] += kb
                if name == "[heap]":
                    out["heap_mb"] += kb
                elif name.endswith("-shm"):
                    out["shm_mb"] += kb
                elif name == "":
                    out["anon_mmap_mb"] += kb
                    out["anon_maps"] += 1
                elif not name.startswith("["):
                    out["file_mb"] += kb
            elif first == "Anonymous:":
                out["anon_mb"] += int(line.split()[1])
    return {k: (round(v / 1024, 2) if k.endswith("_mb") else v) for k, v in out.items()}


def data_dir_of(path: str | Path) -> Path:
    return Path(path).expanduser()
