"""No watch takes another's messages, in every documented deployment, with the
real cloud (`pers serve` processes) and real Mosquitto brokers:

- embedded: the generated broker and one cloud process (SQLite);
- workers: two cloud processes splitting the ingest in a shared group
  ($share/<group>/...), PostgreSQL;
- edge: the watches on an edge Mosquitto bridged to a core that only the cloud and
  the bridge may use (docs/scaling.md, section 1b), two workers in a shared group.

Watch B subscribes to the cloud's shared groups under every name it could guess,
to every watch's up topics, to "#" and "$SYS/#". Watch A sends 6 SOS, each ONCE
(it never re-sends): all 6 must be acked, so each reached the cloud at its first
send. Its location reports, status and presence must all be stored. B must be sent
nothing but its own command. (tests/cloud/mqtt/test_shared_group.py shows the same
watch taking alerts away when it does know the group.)"""
from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest

from bench.harness import Env
from tests.conftest import new_database_url
from tests.system.mqtt_clients import ATTACK_FILTERS, Intruder, Watch

SOS, LOCS, STATUSES = 6, 20, 5
EDGE_PASSWORD = "edge-test-secret"


def embedded() -> tuple[Env, tuple[str, int, str | None]]:
    """The watches on the broker's TLS listener, as deployed (bench.harness.Env.device_link)."""
    env = Env(2).setup()
    env.start_cloud()
    link = env.device_link
    return env, (link["host"], link["port"], link.get("ca"))


def workers(pg_url: str) -> tuple[Env, tuple[str, int, str | None]]:
    env = Env(2, database_url=pg_url, workers=2).setup()
    env.start_workers()
    link = env.device_link
    return env, (link["host"], link["port"], link.get("ca"))


def edge(pg_url: str) -> tuple[Env, tuple[str, int, str | None]]:
    """The core keeps the cloud's accounts and gets the bridge's; the watches' entries
    go to the edge (as a deployment copies them there): no watch can log in at the core."""
    from bench.connections_50k_bench import edge_broker
    from cloud.broker import Credential
    from cloud.domain.security import mosquitto_hash
    env = Env(2, database_url=pg_url, workers=2).setup()
    device_creds = env.device_broker_credentials()
    core = env.broker
    core.service_accounts = (*core.service_accounts, "pers-edge-0")
    core.write_files([Credential(u, mosquitto_hash(env.service_password if u != "pers-edge-0" else EDGE_PASSWORD))
                      for u in core.service_accounts])
    core.reload()
    env.edge = edge_broker(env, 0, env.settings.mqtt_port, EDGE_PASSWORD, device_creds)
    env.start_workers()
    return env, (env.edge.host, env.edge.port, None)  # the edge brokers here have no TLS listener


@pytest.fixture(params=["embedded", "workers", "edge"])
def deployment(request):
    if request.param == "embedded":
        env, device_port = embedded()
    else:
        # A fresh database of the session's PostgreSQL cluster (tests/pg.py), copied from
        # its migrated template: no initdb and no migration per deployment.
        url = new_database_url(request, "postgresql")
        env, device_port = workers(url) if request.param == "workers" else edge(url)
    yield env, device_port
    if getattr(env, "edge", None):
        env.edge.stop()
    env.close()


def ingested(env: Env, kind: str) -> float:
    return sum(c.ingested().get(kind, 0) for c in env.clouds)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)
    return predicate()


def command_from_the_cloud(env: Env, device_id: str) -> str:
    """A command to ``device_id``, published on the core with the cloud's account."""
    topic = f"pers/v1/{device_id}/cmd"
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="isolation-marker", protocol=mqtt.MQTTv311)
    c.username_pw_set(env.settings.mqtt_username + "-alerts", env.service_password)
    c.connect(env.settings.mqtt_host, env.settings.mqtt_port)
    c.loop_start()
    c.publish(topic, b'{"v":1,"cid":"marker","type":"ring"}', qos=1).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()
    return topic


def test_every_alert_of_a_watch_reaches_the_cloud_at_its_first_send_whatever_another_watch_subscribes(deployment):
    env, (host, port, ca) = deployment
    (a_id, a_secret), (b_id, b_secret) = env.creds[:2]
    intruder = Intruder(host, port, b_id, b_secret, ATTACK_FILTERS, ca=ca)
    a = Watch(host, port, a_id, a_secret, ca=ca)
    try:
        a.publish("presence", {"online": True}, retain=True)
        assert wait_for(lambda: ingested(env, "presence") >= 1, 30), "A's presence never reached the cloud"

        mids = {a.sos() for _ in range(SOS)}
        assert a.wait_acked(mids, 30), f"alerts never acked (sent once each): {sorted(mids - a.acked)}"
        assert ingested(env, "alert") == SOS

        for i in range(LOCS):
            a.loc(i)
        for i in range(STATUSES):
            a.status(90 - i)
        assert wait_for(lambda: ingested(env, "loc") == LOCS and ingested(env, "status") == STATUSES, 30), \
            (ingested(env, "loc"), ingested(env, "status"))

        # Whatever the broker answered B's SUBSCRIBEs (2.0.x grants them all) ...
        assert set(intruder.subacks.values()) <= {0x01, 0x80}, intruder.subacks
        # ... B is sent nothing of A's: the first message it gets is its own command,
        # published after every message of A's (and every ack to A) was routed.
        marker = command_from_the_cloud(env, b_id)
        assert intruder.next_message(15)[0] == marker
    finally:
        a.close()
        intruder.close()
