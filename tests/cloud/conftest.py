"""Fixtures for the issue-5 domain tests, run on SQLite and on PostgreSQL.

PostgreSQL is Debian's (``/usr/lib/postgresql/<v>/bin``): one throwaway
cluster per test session on a free loopback port, its files in a temp dir.
The schema is migrated once into a template database (through Alembic, as in
production); each test gets a fresh copy of it (CREATE DATABASE ... TEMPLATE),
which takes milliseconds. initdb refuses to run as root, so as root the
cluster runs as the ``postgres`` user."""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port

_counter = itertools.count()


def _pg_bin() -> Path | None:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(cand, "initdb")):
            return Path(cand)
    return None


class PgCluster:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="pers-pg-"))
        self.port = free_port()
        self.as_user = None
        if os.geteuid() == 0:
            self.as_user = "postgres"
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=400")
        self._run("pg_ctl", "-D", str(data), "-o", opts, "-l", str(self.dir / "pg.log"), "-w", "start")

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def execute(self, sql: str) -> None:
        import psycopg
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(sql)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster():
    bindir = _pg_bin()
    if bindir is None:
        # `make test` installs PostgreSQL (scripts/install-system-deps.sh), so in CI a
        # missing server is a broken setup, never a reason to pass without testing it.
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: scripts/install-system-deps.sh postgresql")
        pytest.skip("PostgreSQL is not installed here; `make test` installs it (the SQLite half still runs)")
    cluster = PgCluster(bindir)
    cluster.start()
    from cloud.store.migrate import upgrade
    cluster.execute("CREATE DATABASE pers_template")
    upgrade(cluster.url("pers_template"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    from cloud.store.migrate import upgrade
    path = tmp_path_factory.mktemp("sqlite-template") / "pers.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A migrated, empty database: SQLite in the test's temp dir (a copy of a database
    migrated once), or a fresh PostgreSQL database from the migrated template."""
    if request.param == "sqlite":
        target = tmp_path / "pers.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
    else:
        cluster = request.getfixturevalue("pg_cluster")
        name = f"t{os.getpid()}_{next(_counter)}"
        cluster.execute(f"CREATE DATABASE {name} TEMPLATE pers_template")
        yield cluster.url(name)


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
def world(db_url, tmp_path):
    """The services on that database with a FakeClock, the demo seed, and recorders
    for commands, configs and live events."""
    from cloud.api.app import build_services
    from cloud.domain.clock import FakeClock
    from cloud.seed import seed_demo
    from cloud.settings import Settings

    settings = Settings(data_dir=tmp_path, database_url=db_url, log_json=False)
    clock = FakeClock()
    svc = build_services(settings, clock=clock, with_mqtt=False)
    sender, events = ConfigRecorder(), Recorder()
    svc.ingestor.sender.target = sender
    svc.live.publish = events.publish  # every domain service shares this hub
    seed = seed_demo(svc.sm, clock, tmp_path)
    yield World(svc, clock, sender, events, seed, db_url)
    svc.sm.kw["bind"].dispose()
