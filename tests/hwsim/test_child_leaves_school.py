"""A child leaves school during school hours, end to end, with nothing stood in:
the real firmware under `micropython` in hwsim (its GNSS follows the scenario's
route), the embedded Mosquitto, the real cloud (SQLite and PostgreSQL), and a
web hook receiver on loopback in the family's place.

An admin draws the school (a circle) with the admin API; the cloud asks the watch
for positions while the school's schedule runs (``track``); the watch rides out
and the cloud opens a geofence alert, routed to the console, and notifies the
first contact through the web hook; the watch comes back and the case says
"back inside". A second zone whose schedule is not now sees the same exit and
opens nothing."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select, update

from cloud.seed import DEMO_OPERATOR
from cloud.store.models import AlertCase, CaseEvent, GeofenceEvent, Wearer
from hwsim.events import Recorder
from hwsim.runner import run_scenario
from hwsim.scenario import load
from tests.console.test_supervisor import ADMIN
from tests.console.test_truth import receiver  # noqa: F401 (a fixture)

SCHOOL = (45.7500, 4.8500)
TZ = "Europe/Paris"


def window(start: datetime, hours: float) -> list[dict]:
    """A weekly window from ``start`` (local) lasting ``hours``, on ``start``'s weekday."""
    end = start + timedelta(hours=hours)
    return [{"days": [start.weekday()], "from": start.strftime("%H:%M"), "to": end.strftime("%H:%M")}]


def wait_until(fn, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(step)
    return fn()


def test_leaving_school_in_school_hours_reaches_the_console_and_the_family(stack_factory, receiver):  # noqa: F811
    url, got = receiver

    def child(sm, seed):
        with sm() as s:
            s.execute(update(Wearer).where(Wearer.id == seed.wearer_id).values(name="Léa Martin", timezone=TZ))
            s.commit()

    stack = stack_factory(before_start=child, webhook_url=url, outbound_allow_http=True,
                          outbound_allow_loopback=True, geofence_track_check_s=1.0)
    stack.services.accounts.create_operator(stack.seed.tenant_id, ADMIN[0], ADMIN[1], role="admin")
    local_now = datetime.now(UTC).astimezone(ZoneInfo(TZ))
    with httpx.Client(base_url=stack.url) as admin:
        h = {"X-CSRF-Token": admin.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
             .json()["csrf_token"]}
        wid = stack.seed.wearer_id
        school = admin.post(f"/api/admin/wearers/{wid}/geofences", headers=h, json={
            "name": "School", "shape": "circle", "lat": SCHOOL[0], "lon": SCHOOL[1], "radius_m": 150,
            "schedule": window(local_now - timedelta(hours=1), 2), "alert_on_exit": True})
        assert school.status_code == 201, school.text
        club = admin.post(f"/api/admin/wearers/{wid}/geofences", headers=h, json={
            "name": "Club", "shape": "polygon", "alert_on_exit": True,
            "points": [[45.7485, 4.8480], [45.7485, 4.8520], [45.7515, 4.8520], [45.7515, 4.8480]],
            "schedule": window(local_now + timedelta(hours=2), 1)})
        assert club.status_code == 201, club.text
    school_id, club_id = school.json()["id"], club.json()["id"]

    stay, rec = threading.Event(), Recorder()
    result: list = []
    player = threading.Thread(target=lambda: result.append(run_scenario(
        load("child_leaves_school"), stack.seed.device_id, stack.seed.device_secret,
        (stack.settings.mqtt_host, stack.settings.mqtt_port), recorder=rec, stay=stay)), daemon=True)
    player.start()
    try:
        def geofence_case():
            with stack.services.sm() as s:
                return s.scalar(select(AlertCase).where(AlertCase.kind == "geofence"))

        case = wait_until(geofence_case, 40)
        assert case is not None, f"no geofence case; watch: {rec.events[-15:]}"
        # The position that opened it is outside the school by more than its accuracy.
        from geopy.distance import geodesic
        assert geodesic(SCHOOL, (case.lat, case.lon)).meters > 150

        # The family contact (the first of the cascade) got the message through the web hook...
        assert wait_until(lambda: got, 15), "the web hook received nothing"
        assert got[0]["case_id"] == case.id and got[0]["kind"] == "geofence"
        assert got[0]["contact"]["name"] == "Sophie Martin" and "Léa Martin left School at" in got[0]["message"]

        def notified():
            with stack.services.sm() as s:
                return s.scalars(select(CaseEvent.detail).where(CaseEvent.case_id == case.id,
                                                                CaseEvent.action == "contact_notified")).all()

        # ...and the case's timeline says so (the notifier records what the delivery said).
        assert [d["contact"] for d in wait_until(notified, 10)] == ["Sophie Martin"]

        # The console's API: a geofence alarm, below SOS/fall, with the zone's name and the position.
        with httpx.Client(base_url=stack.url) as api:
            api.post("/api/auth/login", json={"username": DEMO_OPERATOR[0], "password": DEMO_OPERATOR[1]})
            view = next(c for c in api.get("/api/cases").json() if c["id"] == case.id)
            assert view["kind"] == "geofence" and view["priority"] == 1
            assert view["zone"]["name"] == "School" and view["zone"]["event"] == "exit"
            assert view["location"]["lat"] == case.lat

            # The watch rides back: the open case says when it came back inside.
            def back():
                full = api.get(f"/api/cases/{case.id}").json()
                return [e for e in full["timeline"] if e["action"] == "back_inside"]

            events = wait_until(back, 40)
            assert events and events[0]["detail"]["geofence"] == "School", rec.events[-15:]
            assert api.get(f"/api/cases/{case.id}").json()["zone"]["back_inside_at"]

        # The club's schedule is not now: the same ride out is an event, and no alert.
        with stack.services.sm() as s:
            club_events = s.execute(select(GeofenceEvent.kind, GeofenceEvent.case_id)
                                    .where(GeofenceEvent.geofence_id == club_id)).all()
            school_events = s.scalars(select(GeofenceEvent.kind).where(GeofenceEvent.geofence_id == school_id)
                                      .order_by(GeofenceEvent.id)).all()
            cases = s.scalars(select(AlertCase.kind)).all()
        assert ("exit", None) in [tuple(e) for e in club_events]
        assert school_events == ["exit", "enter"]  # no flapping on the way
        assert cases == ["geofence"]
    finally:
        stay.set()
        player.join(30)
    assert result and result[0][0], result
