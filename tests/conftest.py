"""Shared fixtures: real processes on loopback only."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from cloud.broker import Credential, MosquittoBroker, mosquitto_hash

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "protocol"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def golden_examples() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))}


def invalid_examples() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((FIXTURES / "invalid").glob("*.json"))}


@pytest.fixture
def mosquitto(tmp_path):
    """A factory: ``mosquitto({"dev1": "secret"})`` starts a real Mosquitto with the
    generated password file and ACL (service account ``pers-cloud``/``cloudpw``)."""
    started: list[MosquittoBroker] = []

    def start(devices: dict[str, str], service_password: str = "cloudpw") -> MosquittoBroker:
        broker = MosquittoBroker(tmp_path / f"b{len(started)}", port=free_port())
        creds = [Credential("pers-cloud", mosquitto_hash(service_password))]
        creds += [Credential(d, mosquitto_hash(s)) for d, s in devices.items()]
        broker.write_files(creds)
        broker.start()
        started.append(broker)
        return broker

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def stack(tmp_path):
    """The real service as `pers demo` runs it: migrated SQLite, demo seed, the
    embedded Mosquitto and the cloud's HTTP server, on free loopback ports."""
    from cloud.domain.clock import SystemClock
    from cloud.runtime import Stack, prepare
    from cloud.seed import seed_demo
    from cloud.settings import Settings
    from cloud.store.db import make_engine, make_sessionmaker

    settings = Settings(data_dir=tmp_path / "data", http_port=free_port(), mqtt_port=free_port(), log_json=False)
    prepare(settings)
    seed = seed_demo(make_sessionmaker(make_engine(settings.db_url)), SystemClock(), settings.data_dir)
    s = Stack(settings)
    s.start_broker()
    s.start_cloud()
    s.seed = seed
    yield s
    s.stop()
