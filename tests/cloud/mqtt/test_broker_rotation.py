"""Provisioning and secret rotation against a real Mosquitto (2.0.x): the API's
broker port rewrites the password file and reloads it. Measured behaviour: on
that reload Mosquitto re-checks connected clients and disconnects one whose
password no longer matches, so a rotated secret ends the old session at once."""
from cloud.platform import BrokerFiles
from cloud.settings import Settings
from cloud.wiring import open_store
from tests.cloud.helpers import admin
from tests.cloud_helpers import device_session as connect


def test_provision_then_rotate_drops_the_old_session(make_world, db_url, mosquitto):
    broker = mosquitto({})
    # The runtime's own broker port, given to build_services as the runtime gives it.
    settings = Settings(database_url=db_url, mqtt_password="cloudpw", data_dir=broker.dir.parent, log_json=False)
    sm = open_store(settings)
    world = make_world(sm=sm, broker_auth=BrokerFiles(settings, broker, sm))
    adm = admin(world)
    dev = world.svc.admin.provision(adm, None, world.seed.wearer_id)  # the server issues the id
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
