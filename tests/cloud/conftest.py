"""Fixtures for the cloud domain tests, run on SQLite and on PostgreSQL.

The database comes from tests/conftest.py: the ``database`` fixture
(``sqlite`` / ``postgresql``) and the session's throwaway PostgreSQL cluster
(``pg_cluster``, tests/pg.py), whose template database is migrated once through
Alembic; each test gets a fresh copy of it (CREATE DATABASE ... TEMPLATE), which
takes milliseconds. A missing PostgreSQL fails the tests (never a skip)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field

import pytest

from tests.conftest import new_database_url


@pytest.fixture
def db_url(request, database, tmp_path):
    """A migrated, empty database: SQLite in the test's temp dir (a copy of a database
    migrated once), or a fresh PostgreSQL database from the migrated template."""
    if database == "sqlite":
        target = tmp_path / "pers.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    return new_database_url(request, database)


class Recorder:
    """An EventSink that keeps what the domain published (the live feed's input)."""

    def __init__(self):
        self.events: list[tuple[int, dict]] = []

    def publish(self, tenant_id: int, event: dict) -> None:
        self.events.append((tenant_id, event))

    def of_type(self, kind: str) -> list[dict]:
        return [e for _, e in self.events if e.get("type") == kind]


class ConfigRecorder:
    def __init__(self):
        self.sent: list[tuple[str, dict]] = []
        self.configs: list[tuple[str, dict]] = []

    def send_command(self, device_id, command):
        self.sent.append((device_id, command))

    def publish_config(self, device_id, config):
        self.configs.append((device_id, config))


@dataclass
class World:
    svc: object
    clock: object
    sender: ConfigRecorder
    events: Recorder
    seed: object
    url: str
    extra: dict = field(default_factory=dict)


@pytest.fixture
def make_world(db_url, tmp_path):
    """Builds the world on that database; ``broker_auth`` (and the ``sm`` it reads)
    go to build_services, for a test that watches the broker port."""
    from cloud.domain.clock import FakeClock
    from cloud.seed import seed_demo
    from cloud.settings import Settings
    from cloud.wiring import build_services

    built = []

    def make(*, broker_auth=None, sm=None, http_out=None) -> World:
        settings = Settings(data_dir=tmp_path, database_url=db_url, log_json=False)
        clock = FakeClock()
        sender, events = ConfigRecorder(), Recorder()
        svc = build_services(settings, clock=clock, with_mqtt=False, sender=sender, broker_auth=broker_auth, sm=sm,
                             http_out=http_out)
        svc.live.publish = events.publish  # every domain service shares this hub
        built.append(svc)
        return World(svc, clock, sender, events, seed_demo(svc.sm, clock, tmp_path), db_url)

    yield make
    for svc in built:
        svc.sm.kw["bind"].dispose()


@pytest.fixture
def world(make_world):
    """The services on that database with a FakeClock, the demo seed, and recorders
    for commands, configs and live events."""
    return make_world()
