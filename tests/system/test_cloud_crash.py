"""kill -9 the cloud mid-stream, restart it: nothing lost, nothing duplicated.

Real processes: `pers broker` (the embedded Mosquitto, supervised) and
`pers serve` with PERS_BROKER=external, exactly as a deployment runs them, on
SQLite and on PostgreSQL (PERS_DATABASE_URL). The watch speaks TLS to the broker's
TLS listener, as deployed watches do; the cloud's own clients stay on loopback 1883."""
import json
import queue
import threading
import time

import paho.mqtt.client as mqtt
from sqlalchemy import create_engine, func, select

from bench.chaos.system import System
from cloud.domain.clock import SystemClock
from cloud.platform import prepare
from cloud.seed import seed_demo
from cloud.store.db import make_engine, make_sessionmaker
from cloud.store.models import Alert, AlertCase


def test_kill_9_the_cloud_mid_stream(tmp_path, database_url):
    system = System(tmp_path / "data")  # the chaos run's harness: real `pers broker` + `pers serve`
    system.data.mkdir()
    if database_url:  # PostgreSQL: the processes are configured as a deployment configures them
        system.env["PERS_DATABASE_URL"] = database_url
    settings = system.settings(database_url=database_url)
    prepare(settings)
    seed = seed_demo(make_sessionmaker(make_engine(settings.db_url)), SystemClock(), system.data)
    tls = system.tls
    assert tls is not None
    try:
        system.start()
        acks: dict[str, float] = {}
        inbox: queue.Queue = queue.Queue()
        dev = device_client(seed, system.tls_port, tls.cafile, inbox)
        mids = [f"3.{i}" for i in range(1, 41)]
        sender = threading.Thread(target=send_until_acked, args=(dev, seed.device_id, mids, inbox, acks))
        sender.start()
        time.sleep(0.8)  # mid-stream
        system.kill_cloud()
        time.sleep(1.5)
        system.start_cloud()
        sender.join(timeout=90)
        dev.disconnect()
        dev.loop_stop()

        assert sorted(acks) == sorted(mids), f"not acked: {sorted(set(mids) - set(acks))}"
        engine = create_engine(settings.db_url)
        with engine.connect() as db:
            stored = db.execute(select(Alert.mid)).scalars().all()
            assert sorted(stored) == sorted(mids)          # nothing lost, nothing twice
            assert db.scalar(select(func.count()).select_from(AlertCase)) == 1
    finally:
        system.stop()


def device_client(seed, port: int, cafile, inbox: queue.Queue) -> mqtt.Client:
    """The seed's watch on a persistent session over TLS (the broker verified against
    ``cafile``, as `pers flash --ca` sets a watch up), its commands into ``inbox``."""
    dev = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=seed.device_id, clean_session=False)
    dev.username_pw_set(seed.device_id, seed.device_secret)
    dev.tls_set(ca_certs=str(cafile))
    dev.on_connect = lambda c, u, f, rc, p: c.subscribe(f"pers/v1/{seed.device_id}/cmd", qos=1)
    dev.on_message = lambda c, u, m: inbox.put(json.loads(m.payload))
    dev.connect("127.0.0.1", port)
    dev.loop_start()
    return dev


def send_until_acked(dev, device_id: str, mids: list[str], inbox: queue.Queue, acks: dict[str, float]) -> None:
    """Like the firmware: send, and re-send the same bytes every 2 s until alert_ack
    `received` (the same mid with other content would be a new alarm: a reset watch)."""
    sent_at: dict[str, float] = {}
    bodies: dict[str, str] = {}
    for mid in mids:
        bodies[mid] = json.dumps({"v": 1, "mid": mid, "ts": int(time.time()), "kind": "sos", "trigger": "button"})
        dev.publish(f"pers/v1/{device_id}/alert", bodies[mid], qos=1)
        sent_at[mid] = time.monotonic()
        time.sleep(0.05)
    deadline = time.monotonic() + 60
    while len(acks) < len(mids) and time.monotonic() < deadline:
        try:
            cmd = inbox.get(timeout=0.2)
            if cmd.get("stage") == "received":
                acks.setdefault(cmd["ref"], time.monotonic())
        except queue.Empty:
            pass
        for mid in mids:
            if mid not in acks and time.monotonic() - sent_at[mid] > 2:
                dev.publish(f"pers/v1/{device_id}/alert", bodies[mid], qos=1)
                sent_at[mid] = time.monotonic()
