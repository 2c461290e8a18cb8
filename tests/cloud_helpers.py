"""Builders for cloud tests: the services on a migrated database, the demo seed.

The database is the test's choice (tests/conftest.py): pass the ``database_url``
fixture, a fresh PostgreSQL database on ``[postgresql]`` and None on ``[sqlite]``,
where None is the service's default, a SQLite file in ``tmp_path``."""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from cloud.domain.clock import FakeClock
from cloud.domain.outbound import OutboundHttp
from cloud.domain.ports import CommandSender, NullSender
from cloud.files import private_dir
from cloud.seed import seed_demo
from cloud.settings import Settings
from cloud.store.migrate import upgrade
from cloud.wiring import Services, build_services


@functools.cache
def sqlite_migrated_once() -> Path:
    """A SQLite database migrated once a process: the SQLite half of these tests starts
    from copies of it, as the PostgreSQL half starts from copies of a migrated template."""
    home = Path(tempfile.mkdtemp(prefix="pers-sqlite-template-"))
    atexit.register(shutil.rmtree, home, True)
    upgrade(f"sqlite:///{home / 'pers.db'}")
    return home / "pers.db"


def make_services(tmp_path: Path, clock: FakeClock | None = None, *, database_url: str | None,
                  sender: CommandSender | None = None,
                  http_out: OutboundHttp | None = None) -> tuple[Services, CommandSender]:
    settings = Settings(data_dir=tmp_path, database_url=database_url, log_json=False)
    if database_url is None and not (tmp_path / "pers.db").exists():
        private_dir(tmp_path)
        shutil.copy(sqlite_migrated_once(), tmp_path / "pers.db")
    upgrade(settings.db_url)  # a no-op on a copy; migrates a file the test left in tmp_path
    clock = clock or FakeClock()
    sender = sender or NullSender()  # no MQTT here: the commands are recorded instead
    svc = build_services(settings, clock=clock, with_mqtt=False, sender=sender, http_out=http_out)
    return svc, sender


def seeded(tmp_path: Path, clock: FakeClock | None = None, *, database_url: str | None,
           sender: CommandSender | None = None, http_out: OutboundHttp | None = None):
    svc, sender = make_services(tmp_path, clock, database_url=database_url, sender=sender,
                                http_out=http_out)
    seed = seed_demo(svc.sm, svc.clock, tmp_path)
    return svc, sender, seed


def device_session(broker, device_id: str, secret: str):
    """A watch's MQTT session (persistent, no auto-retry) against ``broker`` (anything with
    .host and .port); returns the client and a queue of ("connect", refused) and
    ("disconnect", reason) events."""
    import queue

    import paho.mqtt.client as mqtt

    events: queue.Queue = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=False)
    c.username_pw_set(device_id, secret)
    c.on_connect = lambda cl, u, f, rc, p: events.put(("connect", rc.is_failure))
    c.on_disconnect = lambda cl, u, f, rc, p: events.put(("disconnect", str(rc)))
    c.reconnect_delay_set(60, 60)  # do not retry during the test
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c, events
