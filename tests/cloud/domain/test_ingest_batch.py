"""The batch path of the ingest (Ingestor.handle_batch), on SQLite and PostgreSQL:
one transaction for many loc/status/presence messages, with the same outcomes,
rows and device state as handle() one message at a time; duplicates (in the
batch or already stored) and bad input never poison the batch."""
import json

from sqlalchemy import func, select, update

from cloud import metrics
from cloud.domain.accounts import provision_device
from cloud.store.models import AlertCase, Device, GeofenceEvent, LocationPoint, Wearer
from tests.cloud.helpers import admin, alert

CELL = {"mcc": 208, "mnc": 1, "lac": 12345, "cid": 67890, "rssi": -85, "rat": "LTE"}


def loc(world, device, mid, lat=45.764, lon=4.8357, cell=True, position=True):
    body = {"v": 1, "mid": mid, "ts": world.clock.unix(), "reason": "periodic"}
    if position:
        body["loc"] = {"lat": lat, "lon": lon, "acc": 5.0, "src": "gnss"}
    if cell:
        body["cell"] = CELL
    return f"pers/v1/{device}/loc", json.dumps(body).encode()


def status(world, device, mid, pct):
    return f"pers/v1/{device}/status", json.dumps({
        "v": 1, "mid": mid, "ts": world.clock.unix(), "batt": {"pct": pct, "mv": 3900},
        "net": {"profile": "fr-1", "op": "20801", "rssi": -85, "rat": "LTE"}, "fw": "0.2.0", "cfg": 4}).encode()


def presence(device, online):
    return f"pers/v1/{device}/presence", json.dumps({"v": 1, "online": online}).encode()


def rows(world):
    with world.svc.sm() as s:
        return sorted((p.device_id, p.mid, p.lat) for p in s.scalars(select(LocationPoint)))


def rejected(reason):
    return metrics.REJECTED.labels(reason)._value.get()


def test_a_batch_gives_each_message_its_own_outcome(world):
    dev1 = world.seed.device_id
    dev2 = provision_device(world.svc.sm, world.clock, world.seed.tenant_id, device_id="watch-two").device_id
    assert world.svc.ingestor.handle(*loc(world, dev1, "1.0")).accepted  # stored before the batch
    not_json, unknown = rejected("not_json"), rejected("unknown_device")
    batch = [
        loc(world, dev1, "1.1", lat=45.1),
        loc(world, dev2, "1.1", lat=46.1),          # same mid, another device: its own report
        status(world, dev1, "1.2", 55),
        presence(dev2, True),
        (f"pers/v1/{dev1}/loc", b"{not json"),
        loc(world, "no-such-watch", "1.1"),
        loc(world, dev1, "1.1", lat=45.1),          # the same report twice in one batch
        loc(world, dev1, "1.0"),                    # already stored: a redelivery
        loc(world, dev1, "1.3", cell=False, position=False),  # nothing to store, still accepted
    ]
    out = world.svc.ingestor.handle_batch(batch)
    assert [(o.accepted, o.duplicate, o.reason) for o in out] == [
        (True, False, None), (True, False, None), (True, False, None), (True, False, None),
        (False, False, "not_json"), (False, False, "unknown_device"),
        (True, True, None), (True, True, None), (True, False, None)]
    assert [(o.kind, o.device_id) for o in out[:4]] == [("loc", dev1), ("loc", dev2), ("status", dev1),
                                                         ("presence", dev2)]
    assert rejected("not_json") == not_json + 1 and rejected("unknown_device") == unknown + 1
    assert rows(world) == [(dev1, "1.0", 45.764), (dev1, "1.1", 45.1), ("watch-two", "1.1", 46.1)]
    with world.svc.sm() as s:
        d1, d2 = s.get(Device, dev1), s.get(Device, dev2)
        assert (d1.presence, d1.online, d1.last_seen) == ("online", True, world.clock.now())
        assert (d1.batt_pct, d1.fw, d1.cfg_version, d1.country) == (55, "0.2.0", 4, "FR")
        assert d1.last_cell["cid"] == 67890
        assert (d2.presence, d2.online) == ("online", True)

    # The whole batch delivered again: every message a duplicate or the same rejection, nothing stored twice.
    again = world.svc.ingestor.handle_batch(batch)
    assert [o.duplicate for o in again if o.kind == "loc" and o.accepted] == [True, True, True, True, False]
    assert len(rows(world)) == 3


def test_fast_path_and_one_by_one_leave_the_same_device_state(world):
    """Devices already online take the batch's fast path (no ORM object): last_seen and
    last_cell move exactly as through handle()."""
    dev = world.seed.device_id
    world.svc.ingestor.handle(*loc(world, dev, "1.1"))  # online now
    world.clock.advance(30)
    moved = dict(CELL, cid=11111)
    body = {"v": 1, "mid": "1.2", "ts": world.clock.unix(), "loc": {"lat": 45.0, "lon": 4.0, "src": "gnss"},
            "cell": moved}
    world.svc.ingestor.handle_batch([(f"pers/v1/{dev}/loc", json.dumps(body).encode())])
    with world.svc.sm() as s:
        d = s.get(Device, dev)
        assert (d.last_seen, d.online, d.presence, d.last_cell["cid"]) == (world.clock.now(), True, "online", 11111)


def test_a_batch_moves_the_open_case_once(world):
    dev = world.seed.device_id
    case_id = alert(world, "1.1").case_id
    world.events.events.clear()
    out = world.svc.ingestor.handle_batch([loc(world, dev, f"2.{i}", lat=lat)
                                           for i, lat in enumerate((45.7, 45.71, 45.72))])
    assert {o.case_id for o in out} == {case_id}
    with world.svc.sm() as s:
        assert s.get(AlertCase, case_id).lat == 45.72
    published = world.events.of_type("case")
    assert len(published) == 1 and published[0]["case"]["id"] == case_id


def test_a_geofence_crossing_in_a_batch_opens_its_case(world):
    world.clock.advance(86400)  # Monday 09:00 in Lyon
    with world.svc.sm() as s:
        s.execute(update(Wearer).where(Wearer.id == world.seed.wearer_id).values(timezone="Europe/Paris"))
        s.commit()
    school = (45.75, 4.85)
    world.svc.admin.create_geofence(admin(world), world.seed.wearer_id, {
        "name": "School", "shape": "circle", "lat": school[0], "lon": school[1], "radius_m": 150,
        "schedule": [{"days": [0, 1, 3, 4], "from": "08:30", "to": "16:30"}], "alert_on_exit": True})
    dev = world.seed.device_id
    world.svc.ingestor.handle_batch([loc(world, dev, "1.1", *school),
                                     loc(world, dev, "1.2", school[0] + 0.005, school[1]),
                                     loc(world, dev, "1.3", school[0] + 0.006, school[1])])
    with world.svc.sm() as s:
        assert [e.kind for e in s.scalars(select(GeofenceEvent))] == ["exit"]
        case = s.scalar(select(AlertCase).where(AlertCase.kind == "geofence"))
        # the report after the exit, in the same batch, moved the case it opened
        assert case is not None and case.lat == school[0] + 0.006
        assert s.scalar(select(func.count()).select_from(LocationPoint)) == 3
