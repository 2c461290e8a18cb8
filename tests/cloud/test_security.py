"""Security by default: the broker's auth and ACL, secrets kept out of logs,
sessions, and a durable database."""
import json
import logging
import queue
import time

import httpx
import paho.mqtt.client as mqtt
from sqlalchemy import text

from cloud.domain.accounts import provision_device
from cloud.domain.clock import SystemClock
from cloud.seed import DEMO_OPERATOR
from cloud.store.db import make_engine


def connect(host, port, username, password, client_id=None):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or username or "anon")
    if username is not None:
        c.username_pw_set(username, password)
    result, inbox = queue.Queue(), queue.Queue()
    c.on_connect = lambda cl, u, f, rc, p: result.put(rc)
    c.on_message = lambda cl, u, m: inbox.put((m.topic, m.payload))
    c.connect(host, port)
    c.loop_start()
    rc = result.get(timeout=5)
    return c, rc, inbox


def test_broker_refuses_wrong_missing_and_unknown_credentials(mosquitto):
    broker = mosquitto({"watch-a": "secret-a"})
    for user, pw in (("watch-a", "wrong"), ("watch-a", None), (None, None), ("nobody", "x")):
        c, rc, _ = connect(broker.host, broker.port, user, pw)
        c.loop_stop()
        assert rc.is_failure, (user, pw)


def subscribed(client, *topics):
    """Subscribe and wait for the broker's SUBACK: from then on the subscriptions are live."""
    acked = queue.Queue()
    client.on_subscribe = lambda cl, u, mid, codes, p: acked.put(mid)
    _, mid = client.subscribe([(t, 1) for t in topics])
    assert acked.get(timeout=5) == mid


def until(inbox, last, timeout=5.0):
    """Everything ``inbox`` got up to and including the message ``last`` (topic, payload)."""
    seen = []
    while not seen or seen[-1] != last:
        seen.append(inbox.get(timeout=timeout))
    return seen


def test_a_device_cannot_read_another_devices_commands_or_write_down_topics(mosquitto):
    broker = mosquitto({"watch-a": "secret-a", "watch-b": "secret-b"})
    cloud, rc, cloud_inbox = connect(broker.host, broker.port, "pers-cloud", "cloudpw")
    assert not rc.is_failure
    subscribed(cloud, "pers/v1/+/#")
    a, _, a_inbox = connect(broker.host, broker.port, "watch-a", "secret-a")
    b, _, b_inbox = connect(broker.host, broker.port, "watch-b", "secret-b")
    subscribed(a, "pers/v1/watch-a/cmd")
    # B spies on A's commands, wants everyone's alerts, and listens to its own commands.
    subscribed(b, "pers/v1/watch-a/cmd", "pers/v1/+/alert", "pers/v1/watch-b/cmd")
    cloud.publish("pers/v1/watch-a/cmd", b'{"v":1,"cid":"c-1","type":"locate"}', qos=1).wait_for_publish(5)
    b.publish("pers/v1/watch-a/alert", b'{"forged":true}', qos=1).wait_for_publish(5)   # as A
    b.publish("pers/v1/watch-b/cmd", b'{"v":1,"cid":"c-2","type":"ring"}', qos=1).wait_for_publish(5)  # down topic
    a.publish("pers/v1/watch-a/alert", b'{"genuine":true}', qos=1).wait_for_publish(5)
    assert a_inbox.get(timeout=5)[0] == "pers/v1/watch-a/cmd"  # A gets its command
    # B's writes were PUBACKed before A's alert was sent, and the broker delivers to the cloud
    # in the order it took them: anything of B's would be in the cloud's inbox before A's alert.
    seen = until(cloud_inbox, ("pers/v1/watch-a/alert", b'{"genuine":true}'))
    assert [p for t, p in seen if t.endswith("/alert")] == [b'{"genuine":true}']  # the forged one never arrived
    assert not any(t == "pers/v1/watch-b/cmd" for t, _ in seen)
    # B: the cloud's next command to B comes after all of that, so it is the first thing B gets.
    marker = ("pers/v1/watch-b/cmd", b'{"v":1,"cid":"c-3","type":"ring"}')
    cloud.publish(*marker, qos=1).wait_for_publish(5)
    assert b_inbox.get(timeout=5) == marker  # nothing of A's, no alert, not its own forged command
    for c in (cloud, a, b):
        c.loop_stop()


def test_a_device_cannot_take_over_another_devices_session(mosquitto):
    """Client id = username is enforced, so B cannot kick A or steal its queued commands."""
    broker = mosquitto({"watch-a": "secret-a", "watch-b": "secret-b"})
    a, rc, _ = connect(broker.host, broker.port, "watch-a", "secret-a")
    dropped = queue.Queue()
    a.on_disconnect = lambda *args: dropped.put(True)
    b, rc_b, _ = connect(broker.host, broker.port, "watch-b", "secret-b", client_id="watch-a")
    assert not rc_b.is_failure  # B is in: the broker has handled its CONNECT, takeover or not
    # A round trip on A's connection after that: a kicked A would never get its PUBACK.
    a.publish("pers/v1/watch-a/status", b"{}", qos=1).wait_for_publish(5)
    assert dropped.empty()
    a.loop_stop()
    b.loop_stop()


def test_secrets_never_reach_the_logs(stack, caplog):
    caplog.set_level(logging.DEBUG)
    dev = provision_device(stack.services.sm, SystemClock(), stack.seed.tenant_id, device_id="imei-0001")
    with httpx.Client(base_url=stack.url) as api:
        api.post("/api/auth/login", json={"username": DEMO_OPERATOR[0], "password": "not-the-password"})
        r = api.post("/api/auth/login", json={"username": DEMO_OPERATOR[0], "password": DEMO_OPERATOR[1]})
        token = r.cookies.get("pers_session")
        api.get("/api/cases")
    # Bad input from a device is logged without its secrets: rejected on the status topic;
    # on the alert topic unreadable bytes are an alarm all the same (kept as a dead letter).
    c, rc, _ = connect(stack.settings.mqtt_host, stack.settings.mqtt_port, stack.seed.device_id,
                       stack.seed.device_secret)
    c.publish(f"pers/v1/{stack.seed.device_id}/status", b"not json", qos=1).wait_for_publish(5)
    c.publish(f"pers/v1/{stack.seed.device_id}/alert", b"not json", qos=1).wait_for_publish(5)

    def service_logs():  # everything the service logged (the test's own HTTP client, httpx, is not the service)
        return "\n".join(r.getMessage() + " " + json.dumps(r.__dict__, default=str) for r in caplog.records
                         if not r.name.startswith(("httpx", "httpcore")))

    deadline = time.monotonic() + 10
    while not ("rejected up message" in service_logs() and "message quarantined" in service_logs()) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    c.loop_stop()
    logged = service_logs()
    assert "rejected up message" in logged and "message quarantined" in logged  # the logs were captured at all
    for secret in (dev.secret, stack.seed.device_secret, DEMO_OPERATOR[1], token, stack.settings.mqtt_password):
        assert secret and secret not in logged
    broker_log = (stack.broker.dir / "mosquitto.log").read_text()
    for secret in (dev.secret, stack.seed.device_secret, stack.settings.mqtt_password):
        assert secret not in broker_log


def test_a_forged_or_old_session_cookie_is_refused_and_login_rotates_it(stack):
    with httpx.Client(base_url=stack.url) as api:
        api.cookies.set("pers_session", "forged-token-of-my-choosing")
        assert api.get("/api/me").status_code == 401
        r1 = api.post("/api/auth/login", json={"username": DEMO_OPERATOR[0], "password": DEMO_OPERATOR[1]})
        first = r1.cookies.get("pers_session")
        assert first and first != "forged-token-of-my-choosing"
        api.cookies.clear()
        api.cookies.set("pers_session", first)
        csrf = api.get("/api/me").json()["csrf_token"]
        assert api.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        api.cookies.set("pers_session", first)
        assert api.get("/api/me").status_code == 401  # logged out means gone on the server


# SQLite only, on purpose: the pragmas that make a SQLite file durable (PostgreSQL's
# durability is the server's configuration, not the engine's).
def test_sqlite_runs_in_wal_mode_with_durable_commits(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as db:
        assert db.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert db.execute(text("PRAGMA foreign_keys")).scalar() == 1
