"""kill -9 the cloud mid-stream, restart it: nothing lost, nothing duplicated.

Real processes: `pers broker` (the embedded Mosquitto, supervised) and
`pers serve` with PERS_BROKER=external, exactly as a deployment runs them."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import httpx
import paho.mqtt.client as mqtt
from sqlalchemy import create_engine, func, select

from cloud.domain.clock import SystemClock
from cloud.runtime import prepare
from cloud.seed import seed_demo
from cloud.settings import Settings
from cloud.store.db import make_engine, make_sessionmaker
from cloud.store.models import Alert, AlertCase
from tests.conftest import free_port


def spawn(args, env):
    return subprocess.Popen([sys.executable, "-m", "cloud.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_healthy(url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the cloud did not become healthy")


def test_kill_9_the_cloud_mid_stream(tmp_path):
    data, http_port, mqtt_port = tmp_path / "data", free_port(), free_port()
    settings = Settings(data_dir=data, http_port=http_port, mqtt_port=mqtt_port)
    prepare(settings)
    seed = seed_demo(make_sessionmaker(make_engine(settings.db_url)), SystemClock(), data)
    env = {**os.environ, "PERS_DATA_DIR": str(data), "PERS_HTTP_PORT": str(http_port),
           "PERS_MQTT_PORT": str(mqtt_port), "PERS_BROKER": "external"}
    broker = spawn(["broker"], env)
    cloud = spawn(["serve"], env)
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_healthy(url)
        acks: dict[str, float] = {}
        inbox: queue.Queue = queue.Queue()
        dev = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=seed.device_id, clean_session=False)
        dev.username_pw_set(seed.device_id, seed.device_secret)
        dev.on_connect = lambda c, u, f, rc, p: c.subscribe(f"pers/v1/{seed.device_id}/cmd", qos=1)
        dev.on_message = lambda c, u, m: inbox.put(json.loads(m.payload))
        dev.connect("127.0.0.1", mqtt_port)
        dev.loop_start()

        mids = [f"3.{i}" for i in range(1, 41)]
        sent_at: dict[str, float] = {}

        def watch_side():
            # Like the firmware: send, and re-send every 2 s until alert_ack `received`.
            for mid in mids:
                body = json.dumps({"v": 1, "mid": mid, "ts": int(time.time()), "kind": "sos", "trigger": "button"})
                dev.publish(f"pers/v1/{seed.device_id}/alert", body, qos=1)
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
                        body = json.dumps({"v": 1, "mid": mid, "ts": int(time.time()), "kind": "sos",
                                           "trigger": "button"})
                        dev.publish(f"pers/v1/{seed.device_id}/alert", body, qos=1)
                        sent_at[mid] = time.monotonic()

        sender = threading.Thread(target=watch_side)
        sender.start()
        time.sleep(0.8)  # mid-stream
        os.kill(cloud.pid, signal.SIGKILL)
        cloud.wait()
        time.sleep(1.5)
        cloud = spawn(["serve"], env)
        wait_healthy(url)
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
        for p in (cloud, broker):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
