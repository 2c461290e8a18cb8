"""Delivery faults between a device and the broker (a real MQTT-aware proxy in
the path): duplicated and dropped PUBLISH packets, and an outage. The cloud
must store each alert once and the device must end up with its alert_ack."""
import json
import queue
import time

import paho.mqtt.client as mqtt
from sqlalchemy import func, select

from bench.chaos.mqtt_fault_proxy import FaultProxy
from cloud.store.models import Alert, AlertCase


def device(stack, port):
    inbox = queue.Queue()
    dev_id = stack.seed.device_id
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=dev_id, clean_session=False)
    c.username_pw_set(dev_id, stack.seed.device_secret)
    c.on_message = lambda cl, u, m: inbox.put(json.loads(m.payload))
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(f"pers/v1/{dev_id}/cmd", qos=1)
    c.reconnect_delay_set(0.2, 1)
    c.connect(stack.settings.mqtt_host, port)
    c.loop_start()
    return c, inbox


def send_until_acked(client, inbox, dev_id, mid, timeout=30.0):
    """What the firmware does: re-send the alert until alert_ack `received` for it."""
    body = json.dumps({"v": 1, "mid": mid, "ts": int(time.time()), "kind": "sos", "trigger": "button"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.publish(f"pers/v1/{dev_id}/alert", body, qos=1)
        try:
            until = time.monotonic() + 1.5
            while time.monotonic() < until:
                cmd = inbox.get(timeout=0.2)
                if cmd.get("type") == "alert_ack" and cmd.get("ref") == mid and cmd.get("stage") == "received":
                    return True
        except queue.Empty:
            continue
    return False


def counts(stack):
    with stack.services.sm() as s:
        return (s.scalar(select(func.count()).select_from(Alert)),
                s.scalar(select(func.count()).select_from(AlertCase)))


def test_duplicated_and_dropped_deliveries_make_one_alert_each(stack):
    proxy = FaultProxy((stack.settings.mqtt_host, stack.settings.mqtt_port)).start()
    proxy.policy.dup_up, proxy.policy.drop_down, proxy.policy.drop_up = 0.5, 0.3, 0.2
    client, inbox = device(stack, proxy.port)
    mids = [f"7.{i}" for i in range(1, 21)]
    for mid in mids:
        assert send_until_acked(client, inbox, stack.seed.device_id, mid), mid
    client.disconnect()
    client.loop_stop()
    proxy.stop()
    assert proxy.stats["duplicated_up"] > 0 and proxy.stats["dropped_down"] > 0 and proxy.stats["dropped_up"] > 0
    assert counts(stack) == (20, 1)  # every alert once; all joined the one open case
    with stack.services.sm() as s:
        assert s.scalar(select(AlertCase.press_count)) == 20


def test_an_outage_delays_but_loses_nothing(stack):
    proxy = FaultProxy((stack.settings.mqtt_host, stack.settings.mqtt_port)).start()
    client, inbox = device(stack, proxy.port)
    time.sleep(0.3)
    proxy.outage(3.0)
    start = time.monotonic()
    assert send_until_acked(client, inbox, stack.seed.device_id, "8.1")
    assert time.monotonic() - start >= 2.0  # it really waited for the network
    client.disconnect()
    client.loop_stop()
    proxy.stop()
    assert counts(stack) == (1, 1)


def test_a_broker_crash_loses_no_alert(stack):
    """kill -9 Mosquitto mid-stream; pers restarts it; the watch side re-sends
    until acked and the cloud's session comes back by itself."""
    client, inbox = device(stack, stack.settings.mqtt_port)
    mids = [f"9.{i}" for i in range(1, 11)]
    results = {}

    def run():
        for mid in mids:
            results[mid] = send_until_acked(client, inbox, stack.seed.device_id, mid, timeout=40)

    import threading
    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    restarts = stack.broker.restarts
    stack.broker.kill()
    t.join(timeout=120)
    client.disconnect()
    client.loop_stop()
    assert stack.broker.restarts == restarts + 1
    assert all(results.get(m) for m in mids), results
    with stack.services.sm() as s:
        assert sorted(s.scalars(select(Alert.mid)).all()) == sorted(mids)
