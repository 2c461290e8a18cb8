"""The cloud's role in firmware tests: paho-mqtt as the pers-cloud service account."""
from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt


class FakeCloud:
    def __init__(self, port: int, password: str = "cloudpw"):
        self.messages: list[tuple[str, str, dict]] = []  # (device, kind, payload)
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pers-cloud")
        self.client.username_pw_set("pers-cloud", password)
        self.client.on_connect = lambda c, *a: c.subscribe("pers/v1/+/+", qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "cloud could not subscribe"

    def _on_message(self, client, userdata, msg):
        _, _, device, kind = msg.topic.split("/")
        with self._cond:
            self.messages.append((device, kind, {"_raw": msg.payload, **json.loads(msg.payload)}))
            self._cond.notify_all()

    def received(self, kind: str) -> list[dict]:
        with self._cond:
            return [p for _, k, p in self.messages if k == kind]

    def wait(self, kind: str, match=lambda p: True, timeout: float = 20, count: int = 1) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [p for _, k, p in self.messages if k == kind and match(p)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                assert left > 0, f"cloud: {count} {kind} message(s) not received in {timeout}s: {self.messages}"
                self._cond.wait(left)

    def command(self, device: str, **fields) -> None:
        doc = {"v": 1, "ts": int(time.time()), **fields}
        self.client.publish(f"pers/v1/{device}/cmd", json.dumps(doc), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
