"""Watches as bare paho clients, for the tests that set one watch against another.

``Watch`` sends what it is told once and never re-sends: an alert that a broker
handed to someone else is never acked, which is what the isolation tests look for.
``Intruder`` subscribes to filters that are not its own and records its SUBACKs and
every message it is sent."""
from __future__ import annotations

import itertools
import json
import queue
import threading
import time

import paho.mqtt.client as mqtt

ROOT = "pers/v1"


def _client(client_id: str, username: str, password: str, clean: bool = False, ca=None) -> mqtt.Client:
    """``ca``: over TLS, the broker verified against it (a watch's path as deployed)."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                    protocol=mqtt.MQTTv311)
    c.username_pw_set(username, password)
    if ca is not None:
        c.tls_set(ca_certs=str(ca))
    c.reconnect_delay_set(60, 60)  # a reconnect would re-send: not in these tests
    return c


class Watch:
    def __init__(self, host: str, port: int, device_id: str, secret: str, ca=None):
        self.id = device_id
        self.acked: set[str] = set()
        self.alert_acks = 0  # every alert_ack "received", repeats included
        self._lock = threading.Condition()
        self._seq = itertools.count(1)
        self.c = _client(device_id, device_id, secret, ca=ca)
        self.c.on_message = self._on_message
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.connect(host, port)
        self.c.loop_start()
        self.c.subscribe(f"{ROOT}/{device_id}/cmd", 1)
        assert subscribed.wait(10), "no SUBACK for the watch's own cmd topic"

    def _on_message(self, client, userdata, msg) -> None:
        cmd = json.loads(msg.payload)
        if cmd.get("type") == "alert_ack" and cmd.get("stage") == "received":
            with self._lock:
                self.alert_acks += 1
                self.acked.add(cmd["ref"])
                self._lock.notify_all()

    def publish(self, kind: str, body: dict, retain: bool = False) -> str:
        mid = f"iso.{next(self._seq)}"
        body = {"v": 1, "mid": mid, "ts": int(time.time()), **body}
        self.c.publish(f"{ROOT}/{self.id}/{kind}", json.dumps(body), qos=1, retain=retain).wait_for_publish(10)
        return mid

    def sos(self) -> str:
        return self.publish("alert", {"kind": "sos", "trigger": "button", "batt": {"pct": 64}})

    def loc(self, i: int) -> str:
        ts = int(time.time())
        return self.publish("loc", {"loc": {"lat": 45.0 + i / 1e4, "lon": 4.8, "acc": 8.5, "src": "gnss", "ts": ts},
                                    "reason": "periodic"})

    def status(self, pct: int) -> str:
        return self.publish("status", {"batt": {"pct": pct, "mv": 3900}, "fw": "iso-1", "uptime": 5, "cfg": 0})

    def wait_acked(self, mids: set[str], timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: mids <= self.acked, timeout)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


# What a hostile watch tries: the cloud's shared groups under names it could guess, every
# other watch's up topics, everything, the broker's own tree.
GUESSED_GROUPS = ("pers", "pers-cloud", "cloud", "workers")
ATTACK_FILTERS = ([f"$share/{g}/{ROOT}/+/{kind}" for g in GUESSED_GROUPS
                   for kind in ("alert", "loc", "status", "presence", "ack")]
                  + [f"{ROOT}/+/alert", f"{ROOT}/+/loc", f"{ROOT}/+/cmd", "#", "$SYS/#"])


class Intruder:
    """A watch (its own valid credentials) that subscribes to ``filters``."""

    def __init__(self, host: str, port: int, device_id: str, secret: str, filters: list[str], ca=None):
        self.id = device_id
        self.received: queue.Queue = queue.Queue()
        self.subacks: dict[str, int] = {}
        self.first_message: tuple[str, bytes] | None = None
        self.c = _client(device_id, device_id, secret, clean=True, ca=ca)
        self.c.on_message = lambda client, userdata, msg: self.received.put((msg.topic, msg.payload))
        wanted = list(dict.fromkeys([*filters, f"{ROOT}/{device_id}/cmd"]))
        granted = threading.Condition()
        pending: dict[int, str] = {}

        def on_subscribe(client, userdata, mid, reason_codes, properties):
            with granted:  # subscribe() below records the mid under the same lock
                self.subacks[pending[mid]] = reason_codes[0].value
                granted.notify_all()

        self.c.on_subscribe = on_subscribe
        self.c.connect(host, port)
        self.c.loop_start()
        for f in wanted:
            with granted:
                _, mid = self.c.subscribe(f, 1)
                pending[mid] = f
        with granted:
            assert granted.wait_for(lambda: len(self.subacks) == len(wanted), 10), "some SUBACKs never came"

    def next_message(self, timeout: float) -> tuple[str, bytes]:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
