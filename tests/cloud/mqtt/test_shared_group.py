"""A watch and the cloud's shared subscription, on the generated Mosquitto (2.0.x).

What the broker does (measured here, and the reason for the design in
docs/security.md): its acl_file is never consulted on SUBSCRIBE, so a watch is
granted ``$share/<group>/pers/v1/+/alert`` (SUBACK 0x01). If it names the cloud's
group it joins it: Mosquitto hands it its turn of every tenant's alerts, the read
ACL drops them, and the cloud never sees them. The cloud's group name is therefore
a secret the watch cannot name; with it, every alert reaches the cloud's workers.

The "workers" here are two plain subscribers with the cloud's filters (the bridge's
own ``UP_SUBSCRIPTIONS``), so that every PUBLISH the broker hands them is counted;
the whole cloud is in tests/system/test_device_isolation.py."""
from __future__ import annotations

import secrets
import threading

import paho.mqtt.client as mqtt
import pytest
from pydantic import ValidationError

from cloud.mqtt.bridge import UP_SUBSCRIPTIONS
from cloud.settings import Settings
from tests.system.mqtt_clients import ATTACK_FILTERS, Intruder, Watch

SOS = 6


class Worker:
    """A cloud worker's subscriptions: the up topics in ``group``, plus the watch's
    status outside the group (every worker gets that one: the fence)."""

    def __init__(self, broker, username: str, group: str, fence_topic: str):
        self.alerts: list[bool] = []  # the dup flag of every alert PUBLISH received
        self.fenced = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv311)
        self.c.username_pw_set(username, "cloudpw")
        self.c.on_message = self._on_message
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.fence_topic = fence_topic
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        self.c.subscribe([(f"$share/{group}/{t}", 1) for t in UP_SUBSCRIPTIONS] + [(fence_topic, 1)])
        assert subscribed.wait(10)

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == self.fence_topic:
            self.fenced.set()
        elif msg.topic.endswith("/alert"):
            self.alerts.append(bool(msg.dup))

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def alerts_reaching_the_workers(mosquitto, group: str, known: bool) -> tuple[list[bool], Intruder]:
    """Watch B subscribes to the attack filters (and, if ``known``, to ``group``'s);
    watch A sends SOS alerts once each, then its status (the fence: A's messages are
    routed in order, so once both workers have the fence, every alert has been
    handed to whoever it was going to)."""
    broker = mosquitto({"watch-a": "a-secret", "watch-b": "b-secret"})
    fence = "pers/v1/watch-a/status"
    workers = [Worker(broker, user, group, fence) for user in Settings().mqtt_service_accounts()]
    named = [f"$share/{group}/pers/v1/+/{kind}" for kind in ("alert", "loc", "status", "presence", "ack")
             if known]
    intruder = Intruder(broker.host, broker.port, "watch-b", "b-secret", ATTACK_FILTERS + named)
    a = Watch(broker.host, broker.port, "watch-a", "a-secret")
    try:
        for _ in range(SOS):
            a.sos()
        a.status(80)
        assert all(w.fenced.wait(10) for w in workers), "the fence never reached a worker"
        # A command to B, sent after all of A's messages were routed: the first thing B
        # receives must be it, or B was sent something of A's.
        workers[0].c.publish("pers/v1/watch-b/cmd", b"{}", qos=1)
        intruder.first_message = intruder.next_message(10)
        return [dup for w in workers for dup in w.alerts], intruder
    finally:
        for c in (a, intruder, *workers):
            c.close()


@pytest.mark.parametrize("knows_the_group", [True, False], ids=["group-known", "group-secret"])
def test_a_watch_takes_nothing_from_a_group_it_cannot_name(mosquitto, knows_the_group):
    """group-known is the premise, on the broker the tests and the embedded deployment
    run: a watch that knows the group (here "pers", the name the README used to give)
    takes alerts away from the cloud. If a Mosquitto upgrade refuses such a SUBSCRIBE,
    it fails, and docs/security.md must then say so."""
    group = "pers" if knows_the_group else secrets.token_urlsafe(24)
    received, intruder = alerts_reaching_the_workers(mosquitto, group, knows_the_group)
    # Mosquitto 2.0.x grants every filter (its acl_file does not check SUBSCRIBE) ...
    assert set(intruder.subacks.values()) == {1}, intruder.subacks
    # ... and sends the intruder nothing but its own command: the read ACL holds.
    assert intruder.first_message == ("pers/v1/watch-b/cmd", b"{}")
    if knows_the_group:
        assert len(received) < SOS, received  # the premise: a known group loses alerts
    else:
        assert received == [False] * SOS  # every SOS at its first send (dup=0), none lost


@pytest.mark.parametrize("group", ["pers", "pers-cloud-workers", "a" * 21, "pers/v1", "x+" * 12, "é" * 24])
def test_the_cloud_refuses_a_group_name_a_watch_could_guess(group):
    with pytest.raises(ValidationError, match="PERS_MQTT_SHARED_GROUP must be a secret"):
        Settings(mqtt_shared_group=group)


def test_the_cloud_takes_a_generated_group_name():
    group = secrets.token_urlsafe(16)
    assert Settings(mqtt_shared_group=group).mqtt_shared_group == group


def test_an_empty_group_setting_means_no_group():
    assert Settings(mqtt_shared_group="").mqtt_shared_group is None
