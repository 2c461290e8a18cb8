"""The service under test in the chaos run, as separate real processes: `pers broker`
(Mosquitto, supervised) and `pers serve` (PERS_BROKER=external) on a fresh SQLite
database, and the faults done to them (kill -9, a held database lock)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.harness import NO_DEVICE_LIMITS
from bench.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


class System:
    """The service under test, as separate real processes."""

    def __init__(self, data: Path, tls: bool = True):
        self.data = data
        self.http_port, self.mqtt_port, self.gateway_port = free_port(), free_port(), free_port()
        # The watches' door is the TLS listener, as in a deployment (the cloud's own
        # clients stay on loopback 1883); tls=False leaves it shut, for a plaintext figure.
        self.tls_port = free_port() if tls else 0
        # The watch gateway too: SeTracker and IW twins alarm beside ours (docs/gateway.md).
        self.env = {**os.environ, "PERS_DATA_DIR": str(data), "PERS_HTTP_PORT": str(self.http_port),
                    "PERS_MQTT_PORT": str(self.mqtt_port), "PERS_MQTT_TLS_PORT": str(self.tls_port),
                    "PERS_MQTT_TLS_HOST": "127.0.0.1", "PERS_BROKER": "external",
                    "PERS_GATEWAY_PORT": str(self.gateway_port), **NO_DEVICE_LIMITS}
        self.broker = self.cloud = None
        self.url = f"http://127.0.0.1:{self.http_port}"

    def _spawn(self, cmd: str) -> subprocess.Popen:
        log = open(self.data / f"{cmd}.log", "ab")
        return subprocess.Popen([sys.executable, "-m", "cloud.cli", cmd], env=self.env, stdout=log, stderr=log,
                                start_new_session=True, cwd=ROOT)

    def prepare(self, twins: int, watches: int = 0, gateway_twins: int = 0):
        from cloud.domain.clock import SystemClock
        from cloud.platform import prepare
        from cloud.seed import seed_demo
        from cloud.store.db import make_engine, make_sessionmaker
        from hwsim.provision import provision_fleet

        settings = self.settings()
        prepare(settings)
        _ = self.tls  # the CA and the broker's certificate, made before anyone needs them
        engine = make_engine(settings.db_url)
        seed_demo(make_sessionmaker(engine), SystemClock(), self.data)
        engine.dispose()
        # Through the cloud's door (`pers device add --count --json`). The broker's files
        # are not written here: `pers broker` writes them from the database when it starts.
        creds = provision_fleet(settings, twins, prefix="chaos", sync_broker=False)
        watch_creds = provision_fleet(settings, watches, prefix="chaos-fw", sync_broker=False) if watches else []
        # Gateway watches: registered by IMEI with their protocol, half of each.
        gateway = []
        for proto, prefix, n in (("setracker", "3528399", (gateway_twins + 1) // 2),
                                 ("iw", "8612399", gateway_twins // 2)):
            if n:
                gateway += [(imei, proto) for imei, _ in provision_fleet(settings, n, prefix=prefix, sync_broker=False,
                                                                        protocol=proto)]
        return creds, watch_creds, gateway

    def settings(self, **overrides):
        """The Settings the processes read from ``env``, for work done in this process."""
        from cloud.settings import Settings
        return Settings(data_dir=self.data, mqtt_port=self.mqtt_port, http_port=self.http_port,
                        mqtt_tls_port=self.tls_port, mqtt_tls_host="127.0.0.1", **overrides)

    @property
    def tls(self):
        """The broker's TLS files (cloud/tls.py: made by `pers broker` under <data>/broker/tls/),
        or None without the TLS listener."""
        from cloud.tls import tls_files
        return tls_files(self.settings()) if self.tls_port else None

    def start(self):
        self.broker = self._spawn("broker")
        self.start_cloud()

    def start_cloud(self):
        self.cloud = self._spawn("serve")
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the cloud did not become healthy")

    def kill_cloud(self):
        os.kill(self.cloud.pid, signal.SIGKILL)
        self.cloud.wait()

    def kill_broker(self):
        pid = int((self.data / "broker" / "mosquitto.pid").read_text())
        os.kill(pid, signal.SIGKILL)

    def lock_database(self, seconds: float):
        """Another process (a backup, a vacuum, an operator's sqlite3 shell) holds the write lock."""
        db = sqlite3.connect(self.data / "pers.db", timeout=30)
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        db.rollback()
        db.close()

    def stop(self):
        for p in (self.cloud, self.broker):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
