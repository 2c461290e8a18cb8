"""Location: cell lookup from the OpenCelliD-format sample, labels ("N m from home",
reverse geocoding cached), geofences with enter/exit and the school-hours case."""

import pytest
from sqlalchemy import select, update

from cloud.domain import geo
from cloud.domain.cells import SAMPLE, CellDB
from cloud.store.models import GeofenceEvent, Wearer
from tests.cloud.helpers import actions, admin, alert, case, loc_report

SCHOOL = (45.7500, 4.8500)  # a school in Lyon 7e


def test_the_sample_csv_loads_and_finds_cells_around_lyon_paris_geneva(tmp_path):
    db = CellDB.load(SAMPLE)
    assert len(db.cells) >= 15
    lyon = db.lookup(208, 1, 12345, 67890)
    assert lyon.exact and geo.distance_m((lyon.lat, lyon.lon), (45.764, 4.8357)) < 10
    paris = db.lookup(208, 1, 7501, 300101)
    assert geo.distance_m((paris.lat, paris.lon), (48.8566, 2.3522)) < 10
    geneva = db.lookup(228, 1, 1001, 10002)
    assert geo.distance_m((geneva.lat, geneva.lon), (46.2044, 6.1432)) < 2000
    # Unknown cell in a known area: the area's centroid, with a range covering its cells.
    area = db.lookup(208, 1, 12345, 1)
    assert not area.exact and area.range_m > 1000
    assert db.lookup(208, 1, 99999, 1) is None and db.lookup(208, 1, None, None) is None
    # Junk rows are skipped, not fatal.
    bad = tmp_path / "cells.csv"
    bad.write_text(SAMPLE.read_text() + "LTE,208,1,1,1,0,not-a-number,45,100,1,1,0,0,0\nLTE,208,1,1,2,0,4,95,1\n")
    assert len(CellDB.load(bad).cells) == len(db.cells)


def test_an_alert_without_fix_is_located_by_its_cell(world):
    c = case(world, alert(world, "1.1", loc=None, cell={"mcc": 208, "mnc": 1, "lac": 7501, "cid": 300102}).case_id)
    assert c.loc_src == "cell" and c.acc == 650
    assert geo.distance_m((c.lat, c.lon), (48.8584, 2.2945)) < 1
    assert "located_by_cell" in actions(world, c.id)
    # A GNSS fix that follows replaces it; a later cell fix never replaces GNSS.
    loc_report(world, "1.2", 48.8590, 2.2950, ref="1.1")
    assert case(world, c.id).loc_src == "gnss"
    world.svc.ingestor.handle(f"pers/v1/{world.seed.device_id}/loc",
                              b'{"v":1,"mid":"1.3","cell":{"mcc":208,"mnc":1,"lac":7501,"cid":300101}}')
    assert case(world, c.id).loc_src == "gnss"


def test_a_stale_last_fix_far_from_the_current_cell_gives_way_to_the_cell(world):
    body = {"lat": 45.764, "lon": 4.8357, "acc": 10, "src": "last"}  # remembered in Lyon...
    out = world.svc.ingestor.handle(
        f"pers/v1/{world.seed.device_id}/alert",
        ('{"v":1,"mid":"1.1","kind":"sos","loc":%s,"cell":{"mcc":228,"mnc":1,"lac":1001,"cid":10001}}'
         % __import__("json").dumps(body)).encode())
    c = case(world, out.case_id)  # ...but the cell is in Geneva
    assert c.loc_src == "cell" and round(c.lat, 2) == 46.20


def test_case_view_says_how_far_from_home(world):
    c = alert(world, "1.1", loc=(45.7700, 4.8357)).case_id
    view = world.svc.cases.get_case(admin(world), c)
    label = view["location_label"]
    assert 640 <= label["from_home_m"] <= 700 and label["text"].endswith("m from home")
    assert label["address"] is None


class CountingGeocoder:
    def __init__(self):
        self.calls = 0

    def reverse(self, point, exactly_one=True, language=None):
        self.calls += 1
        return type("Loc", (), {"address": f"Rue {point[0]:.4f}, Lyon"})()


def test_reverse_geocoding_is_used_when_configured_and_cached():
    g = geo.ReverseGeocoder(CountingGeocoder())
    assert g.label(45.76401, 4.83571, wait=True) == "Rue 45.7640, Lyon"
    assert g.label(45.76402, 4.83569) == "Rue 45.7640, Lyon"  # same ~10 m cell: cached
    assert g.geocoder.calls == 1
    geo.set_geocoder(g)
    try:
        assert geo.location_label(45.76401, 4.83571, (45.764, 4.8357))["text"] == "Rue 45.7640, Lyon"
    finally:
        geo.set_geocoder(None)


def test_a_failing_geocoder_does_not_break_labels():
    class Down:
        def reverse(self, *a, **k):
            raise TimeoutError("geocoder down")
    g = geo.ReverseGeocoder(Down())
    assert g.label(1.0, 2.0, wait=True) is None
    geo.set_geocoder(g)
    try:
        assert geo.location_label(45.77, 4.8357, (45.764, 4.8357))["text"].endswith("from home")
    finally:
        geo.set_geocoder(None)


def test_time_windows_in_local_time_and_across_midnight():
    from datetime import datetime
    school = [{"days": [0, 1, 3, 4], "from": "08:30", "to": "16:30"}]
    monday_0900_paris = datetime(2026, 11, 23, 8, 0)  # UTC
    assert geo.within_windows(school, "Europe/Paris", monday_0900_paris)
    assert not geo.within_windows(school, "Europe/Paris", datetime(2026, 11, 25, 8, 0))  # Wednesday
    assert not geo.within_windows(school, "Europe/Paris", datetime(2026, 11, 23, 16, 0))  # 17:00 local
    night = [{"days": [4], "from": "22:00", "to": "06:00"}]
    assert geo.within_windows(night, "UTC", datetime(2026, 11, 28, 3, 0))  # Saturday 03:00 belongs to Friday
    assert not geo.within_windows(night, "UTC", datetime(2026, 11, 27, 3, 0))


def school_fence(world, **extra):
    with world.svc.sm() as s:
        s.execute(update(Wearer).where(Wearer.id == world.seed.wearer_id).values(timezone="Europe/Paris"))
        s.commit()
    return world.svc.admin.create_geofence(admin(world), world.seed.wearer_id, {
        "name": "School", "shape": "circle", "lat": SCHOOL[0], "lon": SCHOOL[1], "radius_m": 150,
        "schedule": [{"days": [0, 1, 3, 4], "from": "08:30", "to": "16:30"}], "alert_on_exit": True, **extra})


def test_leaving_school_during_school_hours_opens_a_geofence_case(world):
    world.clock.advance(86400)  # Monday 2026-11-23 09:00 in Lyon
    fence = school_fence(world)
    loc_report(world, "1.1", *SCHOOL)  # first fix: sets the state, no event
    loc_report(world, "1.2", SCHOOL[0] + 0.0003, SCHOOL[1])  # 33 m: still inside
    with world.svc.sm() as s:
        assert s.scalars(select(GeofenceEvent)).all() == []
    loc_report(world, "1.3", SCHOOL[0] + 0.005, SCHOOL[1])  # 550 m north: out
    ev = world.events.of_type("geofence")
    assert [(e["event"], e["geofence_id"]) for e in ev] == [("exit", fence["id"])]
    assert ev[0]["case_id"] is not None
    c = case(world, ev[0]["case_id"])
    assert (c.kind, c.priority, c.status) == ("geofence", 1, "routed")
    # Coming back is an "enter" event (no case for it).
    loc_report(world, "1.4", *SCHOOL)
    with world.svc.sm() as s:
        assert [e.kind for e in s.scalars(select(GeofenceEvent).order_by(GeofenceEvent.id))] == ["exit", "enter"]


def test_leaving_school_after_hours_is_an_event_but_no_case(world):
    world.clock.advance(86400 + 9 * 3600)  # Monday 18:00 in Lyon
    school_fence(world)
    loc_report(world, "1.1", *SCHOOL)
    loc_report(world, "1.2", SCHOOL[0] + 0.005, SCHOOL[1])
    ev = world.events.of_type("geofence")
    assert ev[0]["event"] == "exit" and ev[0]["case_id"] is None


def test_a_coarse_fix_straddling_the_edge_is_ignored(world):
    world.clock.advance(86400)
    school_fence(world)
    loc_report(world, "1.1", *SCHOOL)
    loc_report(world, "1.2", SCHOOL[0] + 0.002, SCHOOL[1], acc=900)  # 220 m away but ±900 m
    assert world.events.of_type("geofence") == []


def test_polygon_geofence_and_bad_shapes(world):
    from cloud.domain.errors import Invalid, NotFound
    poly = world.svc.admin.create_geofence(admin(world), world.seed.wearer_id, {
        "name": "Park", "shape": "polygon", "points": [[45.76, 4.84], [45.76, 4.86], [45.74, 4.86], [45.74, 4.84]],
        "alert_on_enter": True})
    loc_report(world, "1.1", 45.70, 4.80)
    loc_report(world, "1.2", 45.75, 4.85)
    ev = world.events.of_type("geofence")
    assert ev[-1]["event"] == "enter" and ev[-1]["geofence_id"] == poly["id"] and ev[-1]["case_id"]
    with pytest.raises(Invalid):
        world.svc.admin.create_geofence(admin(world), world.seed.wearer_id,
                                        {"name": "x", "shape": "circle", "lat": 45, "lon": 4})
    with pytest.raises(NotFound):
        world.svc.admin.create_geofence(admin(world), 999, {"name": "x", "shape": "circle", "lat": 45, "lon": 4,
                                                            "radius_m": 100})


def test_a_watch_walking_along_the_fence_does_not_flap(world):
    """A hand-made track around the 150 m school (margin 15 m): GNSS jitter around the
    fence changes nothing; a fix clearly out is one exit; a coarse fix straddling the
    edge on the way back changes nothing; clearly in again is one enter, and the open
    case says when the child came back."""
    from geopy.distance import geodesic
    world.clock.advance(86400)  # Monday 09:00 in Lyon
    fence = school_fence(world)

    def at(metres, bearing=0.0):
        p = geodesic(meters=metres).destination(SCHOOL, bearing)
        return p.latitude, p.longitude

    loc_report(world, "2.0", *at(20))  # first fix: inside
    for i, (d, b) in enumerate([(140, 0), (158, 30), (145, 60), (162, 90), (150, 120), (139, 150), (161, 180)]):
        loc_report(world, f"2.{i + 1}", *at(d, b), acc=4)  # along the fence, within the margin
    assert world.events.of_type("geofence") == []
    loc_report(world, "2.8", *at(400, 180), acc=8)
    loc_report(world, "2.9", *at(170, 200), acc=60)  # straddles the edge: no verdict
    world.clock.advance(300)
    loc_report(world, "2.10", *at(30, 200), acc=8)
    ev = world.events.of_type("geofence")
    assert [(e["event"], e["geofence_id"]) for e in ev] == [("exit", fence["id"]), ("enter", fence["id"])]
    assert ev[1]["case_id"] == ev[0]["case_id"]  # the return is written on the open case
    story = actions(world, ev[0]["case_id"])
    assert "back_inside" in story
    # No channel is set up in this world: the family was NOT reached, and the case says so.
    assert "contact_not_reached" in story and "contact_notified" not in story


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # both run in tests/hwsim/test_child_leaves_school.py
def test_positions_are_asked_only_while_a_zone_is_in_its_schedule(world):
    """The watch reports only when asked: the ticker keeps one ``track`` in force on an
    online watch while its wearer's zone is in its schedule, and asks nothing outside it."""
    world.clock.advance(86400 + 9 * 3600)  # Monday 18:00 in Lyon: school is over
    school_fence(world)
    loc_report(world, "3.1", *SCHOOL)  # the watch is online
    tracks = lambda: [c for d, c in world.sender.sent if c.get("type") == "track"]  # noqa: E731
    world.svc.ticker.tick()
    assert tracks() == []
    world.clock.advance(15 * 3600)  # Tuesday 09:00: in school hours
    world.svc.ticker.tick()
    world.clock.advance(30)
    world.svc.ticker.tick()  # still in force: not sent again
    assert [(c["interval_s"], c["duration_s"]) for c in tracks()] == [(60, 3600)]
