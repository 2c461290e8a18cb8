"""Private files on disk, read with os.stat from the running service: the data
directory 0700; the database (with its -wal and -shm), the broker's password file,
ACL and config, the service secret and the demo device's credentials 0600, at
start and after a device's secret is rotated (which rewrites the broker's files).

SQLite only: the files are SQLite's (PostgreSQL keeps its own, under its own user)."""
from __future__ import annotations

import os
import stat

import httpx
import pytest

from cloud.seed import DEMO_ADMIN

pytestmark = pytest.mark.parametrize("database", ["sqlite"])


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def private_files(data):
    broker = data / "broker"
    return [data / "pers.db", broker / "passwd", broker / "acl", broker / "mosquitto.conf",
            broker / "service.secret", broker / "mosquitto.pid", data / "demo-device.json"]


def test_private_files_are_0600_at_start_and_after_a_rotation(stack_factory):
    old_umask = os.umask(0o022)  # the usual umask: without care, files would come out 0644
    try:
        # A database left world-readable (by an older version, or copied in) is corrected at start.
        stack = stack_factory(before_start=lambda sm, seed: os.chmod(sm.kw["bind"].url.database, 0o644))
    finally:
        os.umask(old_umask)
    data = stack.settings.data_dir
    assert mode(data) == 0o700 and mode(data / "broker") == 0o700 and mode(data / "broker" / "persist") == 0o700
    assert {p.name: oct(mode(p)) for p in private_files(data)} == {p.name: "0o600" for p in private_files(data)}

    passwd = data / "broker" / "passwd"
    before = os.stat(passwd).st_ino
    with httpx.Client(base_url=stack.url, timeout=10) as api:
        r = api.post("/api/auth/login", json={"username": DEMO_ADMIN[0], "password": DEMO_ADMIN[1]})
        r = api.post(f"/api/admin/devices/{stack.seed.device_id}/rotate",
                     headers={"X-CSRF-Token": r.json()["csrf_token"]})
        assert r.status_code == 200, r.text
    assert os.stat(passwd).st_ino != before  # really rewritten (atomically: a new file)
    # The rotation was written through the service's open connections: the WAL and its index exist now.
    for p in (passwd, data / "broker" / "acl", data / "broker" / "mosquitto.conf", data / "pers.db",
              data / "pers.db-wal", data / "pers.db-shm"):
        assert mode(p) == 0o600, p
    assert not list((data / "broker").glob("*.tmp"))
