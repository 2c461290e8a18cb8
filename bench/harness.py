"""Shared plumbing for the benchmarks: a temp data dir with the demo seed and a
provisioned fleet, the embedded Mosquitto (started here, so the same broker
serves the baseline and the cloud), the cloud as a real separate process
(``python -m cloud.cli serve`` with ``PERS_BROKER=external``), and where the
results go. What the benches measure with (psutil sampling, py-spy profiles) is
bench/measure.py.

Nothing here changes the cloud: it runs exactly as ``pers serve`` runs it.
"""
from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))


from bench.ports import free_port  # noqa: E402,F401  (benches import it from here)


def machine() -> dict:
    import resource
    return {"cpus": os.cpu_count(), "mem_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
            "mosquitto": _mosquitto_version()}


def _mosquitto_version() -> str | None:
    try:
        from cloud.broker import find_mosquitto
        out = subprocess.run([find_mosquitto(), "-h"], capture_output=True, text=True, timeout=5).stdout
        return out.splitlines()[0] if out else None
    except Exception:  # noqa: BLE001
        return None


def devices_tls() -> bool:
    """The devices' path is TLS (the broker's TLS listener, verified against its CA) as in
    a deployment, unless ``PERS_BENCH_PLAINTEXT=1`` asks for the same run on 1883: the
    figure without TLS, side by side. The cloud's own clients stay on loopback 1883."""
    return os.environ.get("PERS_BENCH_PLAINTEXT", "") in ("", "0")


def results_dir(quick: bool = False) -> Path:
    """bench/results/ (full runs, committed) or bench/results/quick/ (smoke runs);
    ``PERS_BENCH_RESULTS`` overrides the base (the smoke test writes to a temp dir)."""
    base = Path(os.environ.get("PERS_BENCH_RESULTS") or RESULTS)
    return base / "quick" if quick else base


def write_result(name: str, data: dict) -> Path:
    out_dir = results_dir(bool(data.get("quick")))
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"bench": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
            "devices_transport": "tls" if devices_tls() else "plaintext", **data}
    # A plaintext run is the comparison figure: it does not replace the TLS one.
    path = out_dir / (f"{name}.json" if devices_tls() else f"{name}_plaintext.json")
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


class Env:
    """Data dir + seed + fleet credentials + the embedded Mosquitto (run by us)."""

    def __init__(self, devices: int, *, database_url: str | None = None, keep: bool = False, workers: int = 1,
                 tls: bool | None = None):
        from cloud.settings import Settings
        self.tmp = Path(tempfile.mkdtemp(prefix="pers-bench-"))
        self.keep = keep
        self.tls = devices_tls() if tls is None else tls
        self.settings = Settings(data_dir=self.tmp / "data", http_port=free_port(), mqtt_port=free_port(),
                                 mqtt_tls_port=free_port() if self.tls else 0, mqtt_tls_host="127.0.0.1",
                                 log_json=False, database_url=database_url, broker="external")
        self.devices = devices
        self.broker = None
        self.cloud: CloudProcess | None = None
        self.workers = workers
        # The workers' $share group: a secret, as a deployment keeps it (docs/security.md).
        self.shared_group = secrets.token_urlsafe(24)
        self.clouds: list[CloudProcess] = []
        self.creds: list[tuple[str, str]] = []
        self.timings: dict[str, float] = {}

    def setup(self) -> Env:
        from cloud.domain.clock import SystemClock
        from cloud.platform import embedded_broker, prepare, service_password, sync_broker_auth
        from cloud.seed import seed_demo
        from cloud.store.db import make_engine, make_sessionmaker
        from hwsim.provision import provision_fleet
        t0 = time.perf_counter()
        prepare(self.settings)
        engine = make_engine(self.settings.db_url)
        self.seed = seed_demo(make_sessionmaker(engine), SystemClock(), self.settings.data_dir)
        engine.dispose()
        self.timings["migrate_seed_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        # Through the cloud's door (`pers device add --count --json`), as an installer would;
        # the broker's files are written once, below, with this bench's service accounts.
        self.creds = provision_fleet(self.settings, self.devices, sync_broker=False) if self.devices else []
        self.timings["provision_s"] = round(time.perf_counter() - t0, 3)
        self.service_password = service_password(self.settings)
        t0 = time.perf_counter()
        if self.workers > 1:
            self.broker = self._workers_broker()
        else:
            self.broker = embedded_broker(self.settings)
            sync_broker_auth(self.settings, self.broker)
        self.timings["broker_auth_s"] = round(time.perf_counter() - t0, 3)
        self.broker.start()
        return self

    @property
    def device_link(self) -> dict:
        """Fleet(...) keywords for the devices' path: the TLS listener and the CA the
        twins verify it against, or plaintext 1883."""
        from cloud.tls import tls_files
        s = self.settings
        if not self.tls:
            return {"host": s.mqtt_host, "port": s.mqtt_port}
        files = tls_files(s)
        assert files is not None
        return {"host": "127.0.0.1", "port": s.mqtt_tls_port, "ca": str(files.cafile)}

    def _workers_broker(self):
        """The embedded broker with one service account per ingest worker: Mosquitto's
        use_username_as_clientid would otherwise make two workers take each other's
        session over. The devices' entries are the cloud's own (sync_broker_auth)."""
        from cloud.broker import Credential, MosquittoBroker
        from cloud.domain.security import mosquitto_hash
        from cloud.platform import sync_broker_auth
        from cloud.settings import alert_username
        from cloud.tls import tls_files
        self.service_users = [self.settings.mqtt_username] + [
            f"{self.settings.mqtt_username}-{i}" for i in range(2, self.workers + 1)]
        accounts = [a for u in self.service_users for a in (u, alert_username(u))]
        broker = MosquittoBroker(self.settings.data_dir, host=self.settings.mqtt_host,
                                 port=self.settings.mqtt_port, service_accounts=tuple(accounts),
                                 tls=tls_files(self.settings), tls_host=self.settings.mqtt_tls_host,
                                 tls_port=self.settings.mqtt_tls_port)
        sync_broker_auth(self.settings, broker)
        creds = [Credential(u, mosquitto_hash(self.service_password)) for u in accounts]
        broker.write_files(creds + self.device_broker_credentials(broker))
        return broker

    def device_broker_credentials(self, broker=None) -> list:
        """The devices' lines of the password file the cloud wrote (``sync_broker_auth``):
        what a deployment copies to its brokers, read here instead of the database."""
        from cloud.broker import Credential
        broker = broker or self.broker
        services = set(broker.service_accounts) | set(self.settings.mqtt_service_accounts())
        rows = (line.split(":", 1) for line in broker.passwd.read_text().splitlines() if line)
        return [Credential(user, digest) for user, digest in rows if user not in services]

    @property
    def broker_pid(self) -> int:
        return self.broker.proc.pid

    def start_cloud(self, **env) -> CloudProcess:
        self.cloud = CloudProcess(self, **env).start()
        self.clouds = [self.cloud]
        return self.cloud

    def start_workers(self) -> list[CloudProcess]:
        """``workers`` cloud processes sharing the ingest ($share/<secret group>/...), each with
        its own service account and HTTP port."""
        self.clouds = []
        for i, user in enumerate(self.service_users):
            self.clouds.append(CloudProcess(self, http_port=self.settings.http_port if i == 0 else free_port(),
                                            PERS_MQTT_USERNAME=user, PERS_MQTT_SHARED_GROUP=self.shared_group,
                                            log_name=f"cloud{i + 1}.log").start())
        self.cloud = self.clouds[0]
        return self.clouds

    def stop_cloud(self) -> None:
        for c in self.clouds or ([self.cloud] if self.cloud else []):
            c.stop()
        self.cloud, self.clouds = None, []

    def db_count(self, table: str) -> int:
        from sqlalchemy import text

        from cloud.store.db import make_engine
        eng = getattr(self, "_engine", None) or make_engine(self.settings.db_url)
        self._engine = eng
        with eng.connect() as c:
            return c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()

    def db_bytes(self) -> int:
        url = self.settings.db_url
        if url.startswith("sqlite"):
            import sqlite3
            base = Path(url.split("///", 1)[1])
            # The database, not its write-ahead log: fold the WAL in first (it may hold up
            # to ~40 MB between the cloud's checkpoints, cloud/store/db.py).
            with sqlite3.connect(base, timeout=30) as con:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
            return sum(p.stat().st_size for p in base.parent.glob(base.name + "*") if p.exists())
        from sqlalchemy import text
        with self._engine.connect() as c:
            return c.execute(text("SELECT pg_database_size(current_database())")).scalar_one()

    def close(self) -> None:
        self.stop_cloud()
        if getattr(self, "_engine", None):
            self._engine.dispose()
        if self.broker:
            self.broker.stop()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


# A benchmark's twins each send far more than a watch may (a few hundred twins stand for a
# fleet's load): the per-device limits (cloud/domain/ingest/limits.py) would measure
# themselves, not the ingest. They are tested in tests/cloud/domain/test_device_limits.py.
NO_DEVICE_LIMITS = {"PERS_DEVICE_LOC_PER_MIN": "0", "PERS_DEVICE_STATUS_PER_MIN": "0",
                    "PERS_DEVICE_PRESENCE_PER_MIN": "0", "PERS_DEVICE_ACK_PER_MIN": "0"}


class CloudProcess:
    def __init__(self, env: Env, http_port: int | None = None, log_name: str = "cloud.log", **extra_env):
        self.env = env
        self.http_port = http_port or env.settings.http_port
        self.extra_env = {k: str(v) for k, v in extra_env.items()}
        self.proc: subprocess.Popen | None = None
        self.log = env.tmp / log_name

    def start(self, timeout: float = 60.0) -> CloudProcess:
        s = self.env.settings
        env = {**os.environ, "PERS_BROKER": "external", "PERS_MQTT_HOST": s.mqtt_host,
               "PERS_MQTT_PORT": str(s.mqtt_port), "PERS_MQTT_TLS_PORT": "0",
               "PERS_MQTT_PASSWORD": self.env.service_password,
               "PERS_LOG_JSON": "false", "PYTHONPATH": str(REPO), **NO_DEVICE_LIMITS, **self.extra_env}
        if s.database_url:
            env["PERS_DATABASE_URL"] = s.database_url
        self._fh = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "cloud.cli", "serve", "--data-dir", str(s.data_dir),
                                      "--http-port", str(self.http_port)], cwd=REPO, env=env,
                                     stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True)
        import httpx
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cloud exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://{s.http_host}:{self.http_port}/healthz", timeout=1).status_code == 200:
                    # the bridge is connected once the serve process printed its banner
                    if b"OpenPERS cloud on" in self.log.read_bytes():
                        return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("cloud did not start: " + self.log.read_text()[-2000:])

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{self.env.settings.http_host}:{self.http_port}"

    def ingested(self) -> dict[str, float]:
        """The cloud's own counters (/metrics): up messages accepted, by kind."""
        import httpx
        out: dict[str, float] = {}
        try:
            text = httpx.get(self.url + "/metrics", timeout=5).text
        except httpx.HTTPError:
            return out
        for line in text.splitlines():
            if line.startswith("pers_ingest_messages_total{"):
                kind = line.split('kind="', 1)[1].split('"', 1)[0]
                out[kind] = float(line.rsplit(" ", 1)[1])
        return out

    def metric_samples(self, prefix: str) -> dict[str, float]:
        """Raw /metrics samples whose name starts with ``prefix`` (line -> value)."""
        import httpx
        try:
            text = httpx.get(self.url + "/metrics", timeout=5).text
        except httpx.HTTPError:
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith(prefix):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def ingest_internals(self) -> dict:
        """Batch sizes, inbox depth and backpressure of the ingest path (cloud/mqtt/bridge.py)."""
        m = self.metric_samples("pers_ingest_")
        n, total = m.get("pers_ingest_batch_size_count", 0), m.get("pers_ingest_batch_size_sum", 0)
        return {"batches": n, "batch_mean": round(total / n, 1) if n else None,
                "inbox_depth": {k.split('lane="')[1].rstrip('"}'): v for k, v in m.items()
                                if k.startswith("pers_ingest_inbox_depth{")},
                "backpressure": {k.split('result="')[1].rstrip('"}'): v for k, v in m.items()
                                 if k.startswith("pers_ingest_backpressure_total{")}}

    def wait_ingested(self, kind: str, n: int, timeout: float) -> float:
        """Wait until the cloud has accepted ``n`` messages of ``kind``; returns seconds waited."""
        t0 = time.monotonic()
        while self.ingested().get(kind, 0) < n and time.monotonic() - t0 < timeout:
            time.sleep(0.2)
        return round(time.monotonic() - t0, 2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_fh", None):
            self._fh.close()


def run_async(coro):
    import asyncio
    return asyncio.run(coro)
