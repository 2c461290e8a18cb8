"""/healthz tells the truth: while the ingest cannot commit (another session holds a
lock on the database, the broker and the database both still answering), the
check fails, and it passes again once the alarm is through. Real service, real
broker, the database's own locks, on SQLite and on PostgreSQL."""
from __future__ import annotations

import json
import queue
import sqlite3
import time

import httpx
import paho.mqtt.client as mqtt
import psycopg


def health(stack) -> tuple[int, dict]:
    r = httpx.get(stack.url + "/healthz", timeout=5)
    return r.status_code, r.json()


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Lock:
    """Another session holds the write lock (SQLite: an exclusive transaction, as a
    backup or an operator's shell would; PostgreSQL: an exclusive table lock)."""

    def __init__(self, url: str):
        if url.startswith("sqlite"):
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
            self.conn.execute("BEGIN EXCLUSIVE")
        else:
            self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
            self.conn.execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")

    def release(self):
        self.conn.rollback()
        self.conn.close()


def test_healthz_fails_while_the_ingest_is_stuck_and_recovers(stack_factory):
    stack = stack_factory(ingest_stuck_after_s=1.5)
    assert health(stack) == (200, {"ok": True, "db": True, "mqtt": True, "ingest": True,
                                   "ingest_oldest_waiting_s": 0.0})
    inbox: queue.Queue = queue.Queue()
    dev = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=stack.seed.device_id, clean_session=False)
    dev.username_pw_set(stack.seed.device_id, stack.seed.device_secret)
    dev.on_message = lambda c, u, m: inbox.put(json.loads(m.payload))
    dev.connect(stack.settings.mqtt_host, stack.settings.mqtt_port)
    dev.loop_start()
    dev.subscribe(f"pers/v1/{stack.seed.device_id}/cmd", qos=1)

    lock = Lock(stack.settings.db_url)
    try:
        sos = {"v": 1, "mid": "h.1", "ts": int(time.time()), "kind": "sos", "trigger": "button"}
        dev.publish(f"pers/v1/{stack.seed.device_id}/alert", json.dumps(sos), qos=1).wait_for_publish(5)
        code, body = wait_until(lambda: (lambda h: h if h[0] == 503 else None)(health(stack)), 20,
                                "/healthz to fail")
        assert body["ingest"] is False and body["db"] is True and body["mqtt"] is True
        assert body["ingest_oldest_waiting_s"] > 1.5
        metrics = httpx.get(stack.url + "/metrics", timeout=5).text
        line = next(x for x in metrics.splitlines() if x.startswith("pers_ingest_oldest_waiting_seconds "))
        assert float(line.split()[1]) > 1.5
        assert inbox.empty()  # nothing acked while nothing is committed
    finally:
        lock.release()
    ack = inbox.get(timeout=40)
    assert (ack["type"], ack["ref"], ack["stage"]) == ("alert_ack", "h.1", "received")
    wait_until(lambda: health(stack)[0] == 200, 10, "/healthz to pass again")
    dev.loop_stop()
    dev.disconnect()
