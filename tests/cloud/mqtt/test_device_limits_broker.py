"""Per-device limits through the running service (`pers serve` as the tests start it:
the embedded Mosquitto, the MQTT bridge, the HTTP server): one watch floods location
reports through the broker; its excess is dropped and counted in /metrics (read with
prometheus_client's own parser); the broker's deliveries are all acknowledged by the
cloud; another watch's SOS sent during the flood is committed and acked, and so is
the flooding watch's own SOS."""
from __future__ import annotations

import json
import queue
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from cloud.domain.accounts import provision_device
from cloud.domain.clock import SystemClock
from cloud.store.models import Alert, AlertCase, LocationPoint
from tests.cloud.mqtt.test_mqtt_ingest import device_client, wait_for

FLOOD = 600


def metric(stack, name: str, **labels) -> float:
    text = httpx.get(f"http://{stack.settings.http_host}:{stack.settings.http_port}/metrics").text
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def sos(mid: str) -> bytes:
    return json.dumps({"v": 1, "mid": mid, "ts": int(time.time()), "kind": "sos", "trigger": "button"}).encode()


def acked(inbox: queue.Queue, mid: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, cmd = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return False
        if (cmd.get("type"), cmd.get("ref"), cmd.get("stage")) == ("alert_ack", mid, "received"):
            return True
    return False


def test_a_flooding_watch_is_cut_to_its_limit_and_every_alarm_still_goes_through(stack_factory):
    quiet = {}

    def add_quiet_watch(sm, seed):
        quiet["device"] = provision_device(sm, SystemClock(), seed.tenant_id, device_id="quiet-watch",
                                           wearer_id=seed.wearer_id)

    stack = stack_factory(before_start=add_quiet_watch)
    seed, other, burst = stack.seed, quiet["device"], stack.settings.device_burst
    assert stack.services.bridge.connected.wait(10)
    dropped_before = metric(stack, "pers_ingest_rate_limited_total", kind="loc")
    flood_inbox, quiet_inbox = queue.Queue(), queue.Queue()
    flooder = device_client(stack.broker, seed.device_id, seed.device_secret, flood_inbox)
    calm = device_client(stack.broker, other.device_id, other.secret, quiet_inbox)
    body = {"v": 1, "reason": "periodic", "loc": {"lat": 45.76, "lon": 4.83, "acc": 5.0, "src": "gnss"}}
    t0 = time.monotonic()
    infos = [flooder.publish(f"pers/v1/{seed.device_id}/loc", json.dumps({**body, "mid": f"4.{i}"}), qos=1)
             for i in range(FLOOD)]
    infos[FLOOD // 2].wait_for_publish(10)
    # In the middle of the flood: another watch's SOS, and the flooder's own.
    calm.publish(f"pers/v1/{other.device_id}/alert", sos("2.1"), qos=1)
    flooder.publish(f"pers/v1/{seed.device_id}/alert", sos("1.1"), qos=1)
    assert acked(quiet_inbox, "2.1", 60), "the other watch's SOS was not acked"
    assert acked(flood_inbox, "1.1", 60), "the flooding watch's own SOS was not acked"
    for info in infos:
        info.wait_for_publish(30)

    def stored() -> int:
        with stack.services.sm() as s:
            return s.scalar(select(func.count()).select_from(LocationPoint)
                            .where(LocationPoint.device_id == seed.device_id))

    def dropped() -> float:
        return metric(stack, "pers_ingest_rate_limited_total", kind="loc") - dropped_before

    # Every report the broker delivered is either stored or dropped and counted ...
    assert wait_for(lambda: stored() + dropped() == FLOOD, timeout=120), (stored(), dropped())
    elapsed = time.monotonic() - t0
    # ... at most the burst and what the rate refilled meanwhile were stored ...
    assert burst <= stored() <= burst + elapsed * stack.settings.device_loc_per_min / 60 + 1, (stored(), elapsed)
    # ... and the cloud acknowledged every delivery: nothing waits in its inbox for a PUBACK.
    assert wait_for(lambda: metric(stack, "pers_ingest_oldest_waiting_seconds") == 0, timeout=30)
    with stack.services.sm() as s:
        for device in (seed.device_id, other.device_id):
            assert s.scalar(select(func.count()).select_from(Alert).where(Alert.device_id == device)) == 1
            assert s.scalar(select(func.count()).select_from(AlertCase).where(AlertCase.device_id == device)) == 1
    for c in (flooder, calm):
        c.disconnect()
        c.loop_stop()
