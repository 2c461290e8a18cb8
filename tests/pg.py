"""A throwaway PostgreSQL cluster for the tests (the ``pg_cluster`` fixture of tests/conftest.py).

PostgreSQL is Debian's (``/usr/lib/postgresql/<v>/bin``, installed by
``scripts/install-system-deps.sh postgresql``, which ``make test`` runs): one
cluster per test session on a free loopback port, its files in a temp dir,
durability off (fsync, synchronous_commit, full_page_writes: nothing here has to
survive a crash of the machine). The schema is migrated once into a template
database, through Alembic as in production; each test gets a fresh copy of it
(CREATE DATABASE ... TEMPLATE, milliseconds), dropped when the test is done.
initdb refuses to run as root, so as root the cluster runs as the ``postgres`` user."""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.ports import free_port

TEMPLATE = "pers_template"
INSTALL_HINT = "run scripts/install-system-deps.sh postgresql (make test does)"


def pg_bin() -> Path | None:
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
        self._names = itertools.count()
        if os.geteuid() == 0:
            self.as_user = "postgres"
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> PgCluster:
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        # Each service under test holds a pool and the live relay's two connections; the
        # databases of finished tests are dropped WITH (FORCE), which ends theirs.
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=400")
        self._run("pg_ctl", "-D", str(data), "-o", opts, "-l", str(self.dir / "pg.log"), "-w", "start")
        return self

    def migrate_template(self) -> None:
        from cloud.store.migrate import upgrade
        self.execute(f"CREATE DATABASE {TEMPLATE}")
        upgrade(self.url(TEMPLATE))

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def execute(self, sql: str) -> None:
        import psycopg
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> tuple[str, str]:
        """A fresh copy of the migrated template: (its SQLAlchemy URL, its name)."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name), name

    def drop_database(self, name: str) -> None:
        # FORCE ends the sessions a finished test left open (pools, the live relay).
        self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
