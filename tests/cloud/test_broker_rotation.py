"""Provisioning and secret rotation against a real Mosquitto (2.0.x): the API's
broker port rewrites the password file and reloads it. Measured behaviour: on
that reload Mosquitto re-checks connected clients and disconnects one whose
password no longer matches, so a rotated secret ends the old session at once."""
import queue

import paho.mqtt.client as mqtt

from cloud.runtime import sync_broker_auth
from tests.cloud.helpers import admin


def connect(broker, device_id, secret):
    events = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=False)
    c.username_pw_set(device_id, secret)
    c.on_connect = lambda cl, u, f, rc, p: events.put(("connect", rc.is_failure))
    c.on_disconnect = lambda cl, u, f, rc, p: events.put(("disconnect", str(rc)))
    c.reconnect_delay_set(60, 60)  # do not retry during the test
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c, events


def test_provision_then_rotate_drops_the_old_session(world, mosquitto):
    broker = mosquitto({})
    settings = world.svc.settings.model_copy(update={"mqtt_password": "cloudpw", "data_dir": broker.dir.parent})
    world.svc.broker_auth.target = lambda: sync_broker_auth(settings, broker, sm=world.svc.sm)
    adm = admin(world)
    dev = world.svc.admin.provision(adm, "864000000000042", world.seed.wearer_id)
    c, events = connect(broker, dev["id"], dev["secret"])
    assert events.get(timeout=5) == ("connect", False)

    new = world.svc.admin.rotate(adm, dev["id"])
    kind, _ = events.get(timeout=5)
    assert kind == "disconnect"  # the broker dropped the session that used the old secret
    c.loop_stop()

    old, old_events = connect(broker, dev["id"], dev["secret"])
    assert old_events.get(timeout=5) == ("connect", True)  # refused
    old.loop_stop()
    fresh, fresh_events = connect(broker, dev["id"], new["secret"])
    assert fresh_events.get(timeout=5) == ("connect", False)
    fresh.disconnect()
    fresh.loop_stop()
