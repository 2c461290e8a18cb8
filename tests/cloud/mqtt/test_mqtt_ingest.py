"""The cloud's MQTT edge against a real Mosquitto (generated password file and ACL)."""
import json
import queue
import time

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from cloud import metrics
from cloud.seed import seed_demo
from cloud.settings import Settings
from cloud.store.migrate import upgrade
from cloud.store.models import Alert, AlertCase, DeadLetter
from cloud.wiring import build_services


def device_client(broker, device_id, secret, inbox: queue.Queue | None = None) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=False)
    c.username_pw_set(device_id, secret)
    connected = queue.Queue()
    c.on_connect = lambda cl, u, f, rc, p: connected.put(rc)
    if inbox is not None:
        c.on_message = lambda cl, u, m: inbox.put((m.topic, json.loads(m.payload)))
    c.connect(broker.host, broker.port)
    c.loop_start()
    rc = connected.get(timeout=5)
    assert not rc.is_failure, rc
    if inbox is not None:
        c.subscribe(f"pers/v1/{device_id}/cmd", qos=1)
    return c


@pytest.fixture
def cloud(tmp_path, mosquitto, database_url):
    settings = Settings(data_dir=tmp_path, database_url=database_url, log_json=False)
    upgrade(settings.db_url)
    probe = build_services(settings, with_mqtt=False)
    seed = seed_demo(probe.sm, probe.clock, tmp_path)
    broker = mosquitto({seed.device_id: seed.device_secret})
    settings = settings.model_copy(update={"mqtt_port": broker.port, "mqtt_password": "cloudpw"})
    started = []

    def start(**overrides):
        svc = build_services(settings.model_copy(update=overrides))
        svc.bridge.start()
        assert svc.bridge.connected.wait(5)
        started.append(svc)
        return svc

    yield start, broker, seed
    for svc in started:
        svc.bridge.stop()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def alerts_in(svc):
    with svc.sm() as s:
        return s.scalar(select(func.count()).select_from(Alert))


SOS = json.dumps({"v": 1, "mid": "5.1", "ts": None, "kind": "sos", "trigger": "button"}).encode()


def test_alert_is_stored_then_acked_to_the_watch(cloud):
    start, broker, seed = cloud
    svc = start()
    inbox = queue.Queue()
    dev = device_client(broker, seed.device_id, seed.device_secret, inbox)
    dev.publish(f"pers/v1/{seed.device_id}/alert", SOS, qos=1).wait_for_publish(5)
    topic, cmd = inbox.get(timeout=10)
    assert topic == f"pers/v1/{seed.device_id}/cmd"
    assert (cmd["type"], cmd["stage"], cmd["ref"]) == ("alert_ack", "received", "5.1")
    assert alerts_in(svc) == 1
    dev.loop_stop()


JUNK = (b"\xff\xfe", b"[]", b'{"v":1}', b"{" * 10000)


def junk_then_sos(cloud, kind):
    """Junk on the watch's ``kind`` topic, then a good SOS: returns the service and
    the first command the watch got."""
    start, broker, seed = cloud
    svc = start()
    inbox = queue.Queue()
    dev = device_client(broker, seed.device_id, seed.device_secret, inbox)
    for junk in JUNK:
        dev.publish(f"pers/v1/{seed.device_id}/{kind}", junk, qos=1).wait_for_publish(5)
    dev.publish(f"pers/v1/{seed.device_id}/alert", SOS, qos=1).wait_for_publish(5)
    return svc, inbox.get(timeout=10)[1]


def test_malformed_payload_is_rejected_and_the_service_keeps_running(cloud):
    svc, cmd = junk_then_sos(cloud, "status")
    assert cmd["ref"] == "5.1"
    assert alerts_in(svc) == 1
    assert svc.bridge.connected.is_set()


def test_junk_on_the_alert_topic_is_an_alarm_all_the_same(cloud):
    """Only the watch can write its alert topic: what arrives there unreadable is kept
    (dead letters) and opens a case that an operator sees; no ack names a mid the
    watch never sent."""
    svc, cmd = junk_then_sos(cloud, "alert")
    assert cmd["ref"] == "5.1"  # the first command the watch gets: nothing for the junk
    with svc.sm() as s:
        cases = s.scalars(select(AlertCase)).all()
        assert len(cases) == 1 and cases[0].press_count == 5 and cases[0].kind == "sos"
        letters = s.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
        assert [d.reason for d in letters] == ["not_utf8", "not_object", "too_large"]
        assert {d.case_id for d in letters} == {cases[0].id}
    assert svc.bridge.connected.is_set()


def test_alert_sent_while_the_cloud_is_down_is_delivered_when_it_returns(cloud):
    """The broker holds QoS1 messages for the cloud's persistent session."""
    start, broker, seed = cloud
    first = start()
    first.bridge.stop()  # the cloud goes away (its session stays on the broker)
    inbox = queue.Queue()
    dev = device_client(broker, seed.device_id, seed.device_secret, inbox)
    dev.publish(f"pers/v1/{seed.device_id}/alert", SOS, qos=1).wait_for_publish(5)  # the broker has it
    assert alerts_in(first) == 0
    second = start()
    topic, cmd = inbox.get(timeout=10)
    assert cmd["ref"] == "5.1" and alerts_in(second) == 1


def test_device_cannot_publish_as_another_device_or_use_a_wrong_password(cloud):
    start, broker, seed = cloud
    svc = start()
    bad = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=seed.device_id)
    bad.username_pw_set(seed.device_id, "wrong-secret")
    result = queue.Queue()
    bad.on_connect = lambda cl, u, f, rc, p: result.put(rc)
    bad.connect(broker.host, broker.port)
    bad.loop_start()
    assert result.get(timeout=5).is_failure
    bad.loop_stop()
    # With its own valid credentials, a device's publish on another id's topic is dropped by the ACL.
    # The message never even reaches the cloud (it would count it as unknown_device).
    unknown_before = metrics.REJECTED.labels("unknown_device")._value.get()
    inbox = queue.Queue()
    dev = device_client(broker, seed.device_id, seed.device_secret, inbox)
    dev.publish("pers/v1/someone-else/alert", SOS, qos=1).wait_for_publish(5)
    dev.publish(f"pers/v1/{seed.device_id}/cmd", b'{"v":1}', qos=1).wait_for_publish(5)  # a down topic
    # Then its own SOS, on the same connection and the cloud's same session: once it is
    # acked, anything the two before it could have done is done.
    dev.publish(f"pers/v1/{seed.device_id}/alert", SOS, qos=1).wait_for_publish(5)
    topic, cmd = inbox.get(timeout=10)
    assert topic == f"pers/v1/{seed.device_id}/cmd" and cmd["ref"] == "5.1"
    assert alerts_in(svc) == 1
    assert metrics.REJECTED.labels("unknown_device")._value.get() == unknown_before


# --- the bridge's inbox: urgent lane first, bounded bulk lane --------------------------
def test_inbox_takes_urgent_first_and_holds_the_reader_when_bulk_is_full():
    import threading

    from cloud.mqtt.bridge import Inbox
    box = Inbox(bulk_max=3)
    assert box.put_bulk(["loc0", "loc1"], wait_s=1)
    assert box.put_bulk(["loc2"], wait_s=1)
    done = []
    waiter = threading.Thread(target=lambda: done.append(box.put_bulk(["loc3", "loc4"], wait_s=10)))
    waiter.start()
    time.sleep(0.2)
    assert done == [] and box.depth() == (0, 3)  # held: the broker keeps the rest meanwhile
    from types import SimpleNamespace
    alert = SimpleNamespace(topic="pers/v1/w1/alert")
    box.put_urgent(alert)
    assert box.take(batch_max=10) == ([alert], [])
    assert box.take(batch_max=2) == ([], ["loc0", "loc1"])  # room: the waiting read goes in, whole
    waiter.join(5)
    assert done == [True]
    assert box.take(batch_max=10) == ([], ["loc2", "loc3", "loc4"])
    # The wait is bounded, so the reader gets round to its keepalive if the store is stuck;
    # what did not fit stays with the reader (and the broker), not in the lane.
    box.put_bulk([0, 1, 2], wait_s=1)
    assert box.put_bulk(["late"], wait_s=0.05) is False and box.depth() == (0, 3)
    box.close()
    assert box.take(batch_max=10) is None


def test_a_flood_of_reports_through_a_small_inbox_loses_nothing_and_the_alert_is_acked(cloud):
    """Backpressure and batching end to end: 3,000 location reports through a bulk
    lane of 100 in batches of at most 50; every one stored exactly once; an alert sent
    after them is acked."""
    start, broker, seed = cloud
    # A small inbox; no per-device limit: one watch stands for a whole fleet's reports here.
    svc = start(ingest_batch_max=50, ingest_bulk_max=100, device_loc_per_min=0)
    from cloud.store.models import LocationPoint
    inbox = queue.Queue()
    dev = device_client(broker, seed.device_id, seed.device_secret, inbox)
    loc = {"v": 1, "ts": None, "loc": {"lat": 45.76, "lon": 4.83, "acc": 5.0, "src": "gnss"}}
    infos = [dev.publish(f"pers/v1/{seed.device_id}/loc", json.dumps({**loc, "mid": f"4.{i}"}).encode(), qos=1)
             for i in range(3000)]
    dev.publish(f"pers/v1/{seed.device_id}/alert", SOS, qos=1)
    _, cmd = inbox.get(timeout=60)
    assert (cmd["type"], cmd["ref"]) == ("alert_ack", "5.1")
    for info in infos:
        info.wait_for_publish(30)

    def stored():
        with svc.sm() as s:
            return s.scalar(select(func.count()).select_from(LocationPoint))
    assert wait_for(lambda: stored() == 3000, timeout=120), stored()
    with svc.sm() as s:
        assert s.scalar(select(func.count(func.distinct(LocationPoint.mid)))) == 3000
    assert svc.bridge.connected.is_set()
    dev.loop_stop()


def test_a_short_batch_lingers_for_more_but_an_alert_ends_the_wait():
    import threading

    from cloud.mqtt.bridge import Inbox
    box = Inbox(bulk_max=100)
    box.put_bulk(["loc0"], wait_s=1)
    later = threading.Timer(0.1, lambda: box.put_bulk(["loc1", "loc2"], wait_s=1))
    later.start()
    t0 = time.monotonic()
    assert box.take(batch_max=3, linger=2.0) == ([], ["loc0", "loc1", "loc2"])  # full: no need to wait on
    assert time.monotonic() - t0 < 1.5
    box.put_bulk(["loc3"], wait_s=1)
    from types import SimpleNamespace
    alert = SimpleNamespace(topic="pers/v1/w1/alert")
    threading.Timer(0.1, lambda: box.put_urgent(alert)).start()
    t0 = time.monotonic()
    assert box.take(batch_max=3, linger=5.0) == ([alert], [])  # the alert does not wait for the batch
    assert time.monotonic() - t0 < 2.0
    t0 = time.monotonic()
    assert box.take(batch_max=3, linger=0.2) == ([], ["loc3"])  # nothing more came: the window closes
    assert 0.15 < time.monotonic() - t0 < 2.0
