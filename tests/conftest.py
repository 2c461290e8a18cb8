"""Shared fixtures: real processes on loopback only."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ports import free_port  # noqa: F401  (tests import it from here)
from cloud.broker import Credential, MosquittoBroker, mosquitto_hash
from cloud.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "protocol"


def golden_examples() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))}


def invalid_examples() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((FIXTURES / "invalid").glob("*.json"))}


def salvaged_examples() -> dict[str, dict]:
    """Alarms with bad fields: accepted, each bad field dropped and flagged."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((FIXTURES / "salvaged").glob("*.json"))}


@pytest.fixture
def mosquitto(tmp_path):
    """A factory: ``mosquitto({"dev1": "secret"})`` starts a real Mosquitto with the
    generated password file and ACL (service accounts ``pers-cloud`` and its alert
    session ``pers-cloud-alerts``, password ``cloudpw``)."""
    started: list[MosquittoBroker] = []

    def start(devices: dict[str, str], service_password: str = "cloudpw") -> MosquittoBroker:
        services = Settings().mqtt_service_accounts()
        broker = MosquittoBroker(tmp_path / f"b{len(started)}", port=free_port(), service_accounts=services)
        creds = [Credential(user, mosquitto_hash(service_password)) for user in services]
        creds += [Credential(d, mosquitto_hash(s)) for d, s in devices.items()]
        broker.write_files(creds)
        broker.start()
        started.append(broker)
        return broker

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def stack_factory(tmp_path):
    """A factory: ``stack_factory(escalate_unclaimed_s=3, before_start=fn)`` starts
    the real service as `pers demo` runs it (migrated SQLite, demo seed, the
    embedded Mosquitto, the cloud's HTTP server) on free loopback ports.
    ``before_start(sessionmaker, seed)`` may add data before the cloud starts."""
    from cloud.domain.clock import SystemClock
    from cloud.runtime import Stack, prepare
    from cloud.seed import seed_demo
    from cloud.settings import Settings
    from cloud.store.db import make_engine, make_sessionmaker

    started = []

    def start(before_start=None, **overrides):
        settings = Settings(data_dir=tmp_path / f"data{len(started) or ''}", http_port=free_port(),
                            mqtt_port=free_port(), log_json=False, **overrides)
        prepare(settings)
        sm = make_sessionmaker(make_engine(settings.db_url))
        seed = seed_demo(sm, SystemClock(), settings.data_dir)
        if before_start is not None:
            before_start(sm, seed)
        s = Stack(settings)
        started.append(s)
        s.start_broker()
        s.start_cloud()
        s.seed = seed
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def stack(stack_factory):
    """The real service with the demo's defaults."""
    return stack_factory()
