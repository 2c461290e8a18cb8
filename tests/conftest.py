"""Shared fixtures: real processes on loopback only.

The service and domain tests run on both databases the cloud supports: the
``database`` fixture is parametrised ``sqlite`` / ``postgresql`` (test ids
``test_x[sqlite]``, ``test_x[postgresql]``), and the service fixtures
(``stack_factory``, ``stack``, and ``tests/cloud_helpers.py``'s ``seeded`` /
``make_services`` through ``database_url``) build the service on the test's
database. PostgreSQL is one throwaway cluster per session (``pg_cluster``,
tests/pg.py). A test about SQLite itself asks for ``database`` with
``@pytest.mark.parametrize("database", ["sqlite"])`` or does not use these
fixtures, and says why."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bench.ports import free_port  # noqa: F401  (tests import it from here)
from cloud.broker import Credential, MosquittoBroker, mosquitto_hash
from cloud.settings import Settings
from tests.pg import INSTALL_HINT, PgCluster, pg_bin

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "protocol"
DATABASES = ("sqlite", "postgresql")


def pytest_configure(config):
    """The service under test is configured by the tests, never by the environment
    they happen to run in: a PERS_DATABASE_URL, PERS_BROKER, PERS_MQTT_PORT... set on
    a CI runner or a developer's shell would silently change what runs (the
    "sqlite" tests on someone's PostgreSQL). The test knobs (PERS_FUZZ_EXAMPLES,
    PERS_SCHEMATHESIS_EXAMPLES, which `make fuzz` sets) are not Settings and stay."""
    for name in Settings.model_fields:
        os.environ.pop(f"PERS_{name.upper()}", None)


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster for the session, its template database
    migrated through Alembic (tests/pg.py). No PostgreSQL is a failure, never a skip:
    `make test` installs it, and no environment variable (CI may or may not set one)
    turns the PostgreSQL half of the tests into a pass that tested nothing."""
    bindir = pg_bin()
    if bindir is None:
        pytest.fail(f"PostgreSQL is not installed: {INSTALL_HINT}", pytrace=False)
    cluster = PgCluster(bindir)
    try:
        cluster.start()
        cluster.migrate_template()
        yield cluster
    finally:
        cluster.stop()


def new_database_url(request, database: str) -> str | None:
    """A fresh, migrated, empty database of the kind ``database``, for as long as
    ``request``'s scope lasts (a module-scoped fixture may call this too).
    postgresql: the URL of a copy of the migrated template, dropped afterwards.
    sqlite: None, i.e. the service's default, a SQLite file in its (fresh) data
    directory, migrated by whoever opens it first, as `pers` does."""
    if database == "sqlite":
        return None
    if database != "postgresql":
        raise ValueError(f"unknown database {database!r}: one of {DATABASES}")
    cluster = request.getfixturevalue("pg_cluster")
    url, name = cluster.create_database()
    request.addfinalizer(lambda: cluster.drop_database(name))
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A SQLite database migrated once through Alembic; tests start from copies of it."""
    from cloud.store.migrate import upgrade
    path = tmp_path_factory.mktemp("sqlite-template") / "pers.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=DATABASES)
def database(request) -> str:
    """Which database the test's service runs on: "sqlite" or "postgresql"."""
    return request.param


@pytest.fixture
def database_url(request, database) -> str | None:
    """``Settings(database_url=...)`` for this test: see new_database_url."""
    return new_database_url(request, database)


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
    session ``pers-cloud-alerts``, password ``cloudpw``). ``tls=True`` adds the TLS
    listener the watches use (``broker.tls_port``, CA ``broker.tls.cafile``), with the
    certificate `pers` makes (cloud/tls.py) for localhost and 127.0.0.1."""
    from cloud.tls import ensure_certificates
    started: list[MosquittoBroker] = []

    def start(devices: dict[str, str], service_password: str = "cloudpw", tls: bool = False) -> MosquittoBroker:
        services = Settings().mqtt_service_accounts()
        data = tmp_path / f"b{len(started)}"
        files = ensure_certificates(data, ["localhost", "127.0.0.1"]) if tls else None
        broker = MosquittoBroker(data, port=free_port(), service_accounts=services, tls=files,
                                 tls_host="127.0.0.1", tls_port=free_port() if tls else 0)
        creds = [Credential(user, mosquitto_hash(service_password)) for user in services]
        creds += [Credential(d, mosquitto_hash(s)) for d, s in devices.items()]
        broker.write_files(creds)
        broker.start()
        started.append(broker)
        return broker

    yield start
    for b in started:
        b.stop()


def check_live_relay(services, timeout: float = 10.0) -> None:
    """``live_relay="auto"``: on PostgreSQL the consoles' feed also goes over LISTEN/NOTIFY
    (cloud/live_relay.py), so that several replicas share it; on SQLite (one file, one
    process) there is no relay. Once the service runs, wait until the relay LISTENs:
    its "resync" on (re)connection then reaches no console yet, and a test sees the
    same feed on both databases."""
    relay = services.relay
    if services.settings.db_url.startswith("postgresql"):
        assert relay is not None, "no live relay on PostgreSQL with live_relay=auto"
        assert relay.listening.wait(timeout), "the live relay never LISTENed"
    else:
        assert relay is None, "a live relay on SQLite"


@pytest.fixture
def stack_factory(tmp_path, request, database):
    """A factory: ``stack_factory(escalate_unclaimed_s=3, before_start=fn)`` starts
    the real service as `pers demo` / `pers serve` run it (migrated database, demo
    seed, the embedded Mosquitto, the cloud's HTTP server) on free loopback ports,
    on the test's ``database``: SQLite in the data directory (the default), or a
    fresh PostgreSQL database (``Settings(database_url=...)``), where the console's
    live feed goes through the LISTEN/NOTIFY relay (``live_relay="auto"``), as with
    several replicas. ``before_start(sessionmaker, seed)`` may add data before the
    cloud starts."""
    from cloud.domain.clock import SystemClock
    from cloud.files import private_dir
    from cloud.runtime import Stack, prepare
    from cloud.seed import seed_demo
    from cloud.settings import Settings
    from cloud.store.db import make_engine, make_sessionmaker

    cluster = request.getfixturevalue("pg_cluster") if database == "postgresql" else None
    sqlite_template = request.getfixturevalue("sqlite_template") if database == "sqlite" else None
    started, databases = [], []

    def start(before_start=None, **overrides):
        if cluster is not None and "database_url" not in overrides:
            url, name = cluster.create_database()
            databases.append(name)
            overrides["database_url"] = url
        settings = Settings(data_dir=tmp_path / f"data{len(started) or ''}", http_port=free_port(),
                            mqtt_port=free_port(), mqtt_tls_port=free_port(), mqtt_tls_host="127.0.0.1",
                            log_json=False, **overrides)
        if sqlite_template is not None and "database_url" not in overrides:
            # The data directory's pers.db starts as a copy of a database migrated once (the
            # migrations of a fresh file are `pers`'s own tests'); prepare() finds it current.
            private_dir(settings.data_dir)
            shutil.copy(sqlite_template, settings.data_dir / "pers.db")
        prepare(settings)
        engine = make_engine(settings.db_url)
        sm = make_sessionmaker(engine)
        seed = seed_demo(sm, SystemClock(), settings.data_dir)
        if before_start is not None:
            before_start(sm, seed)
        engine.dispose()
        s = Stack(settings)
        started.append(s)
        s.start_broker()
        s.start_cloud()
        s.seed = seed
        if settings.live_relay == "auto":
            check_live_relay(s.services)
        return s

    yield start
    for s in started:
        s.stop()
        if s.services is not None:
            s.services.sm.kw["bind"].dispose()
    for name in databases:  # once the services that used them are stopped
        cluster.drop_database(name)


@pytest.fixture
def stack(stack_factory):
    """The real service with the demo's defaults."""
    return stack_factory()
