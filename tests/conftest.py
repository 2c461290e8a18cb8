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
