"""Every bundled scenario passes against the real firmware and a real Mosquitto,
with a paho client in the cloud's place that acknowledges each alert."""
from __future__ import annotations

import json

import pytest

from hwsim.events import Recorder
from hwsim.runner import run_scenario
from hwsim.scenario import SCENARIO_DIR, load
from tests.firmware.cloudsim import FakeCloud

DEV, SECRET = "scenario-watch", "scenario-secret"
NAMES = sorted(p.stem for p in SCENARIO_DIR.glob("*.toml") if p.stem != "sos_demo")  # sos_demo: tests/firmware


class AckingCloud(FakeCloud):
    def _on_message(self, client, userdata, msg):
        super()._on_message(client, userdata, msg)
        if msg.topic.endswith("/alert"):
            doc = json.loads(msg.payload)
            if doc.get("kind") != "cancel":
                cmd = {"v": 1, "cid": f"ack-{doc['mid']}", "ts": 0, "type": "alert_ack",
                       "ref": doc["mid"], "stage": "received"}
                client.publish(msg.topic.rsplit("/", 1)[0] + "/cmd", json.dumps(cmd), qos=1)


@pytest.mark.parametrize("name", NAMES)
def test_bundled_scenario_passes(name, mosquitto):
    broker = mosquitto({DEV: SECRET}, tls=True)  # the watch over TLS, the cloud on loopback plaintext
    cloud = AckingCloud(broker.port)
    rec = Recorder()
    try:
        ok, reason = run_scenario(load(name), DEV, SECRET, ("127.0.0.1", broker.tls_port), recorder=rec,
                                  ca=broker.tls.cafile)
    finally:
        cloud.close()
    tail = "\n".join(f"{e['t']:.1f} {e['type']} {e.get('text') or e.get('line') or e.get('state') or ''}"
                     for e in rec.events[-40:])
    assert ok, f"{reason}\n{tail}"
