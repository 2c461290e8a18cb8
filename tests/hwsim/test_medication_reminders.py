"""Medication reminders end to end, with nothing stood in: the admin sets the
wearer's pills with the admin API, the real firmware under `micropython` in hwsim
takes them from its retained config over the embedded Mosquitto, fires them at
the local time the network gives it (NITZ, AT+CCLK?), and the wearer confirms
the first one; the second is not confirmed and the watch reports it missed. The
real cloud (SQLite and PostgreSQL) stores one dose of each, and the missed one
reaches the family contact through the web hook (SQLite: the tenant's default,
"family") or the operators' queue as a low-priority case (PostgreSQL: the tenant
chose "centre"). Adherence in the console's API counts the stored doses."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select, update

from cloud.seed import DEMO_OPERATOR
from cloud.store.models import AlertCase, Notification, ReminderDose, Wearer
from hwsim.events import Recorder
from hwsim.runner import run_scenario
from hwsim.scenario import load
from tests.console.test_supervisor import ADMIN
from tests.console.test_truth import receiver  # noqa: F401 (a fixture)
from tests.hwsim.test_child_leaves_school import wait_until

TZ = "Europe/Paris"


def test_one_dose_confirmed_one_missed_reaches_family_or_centre(stack_factory, receiver, database):  # noqa: F811
    url, got = receiver
    to_centre = database == "postgresql"

    def paris(sm, seed):
        with sm() as s:
            s.execute(update(Wearer).where(Wearer.id == seed.wearer_id).values(timezone=TZ))
            s.commit()

    stack = stack_factory(before_start=paris, webhook_url=url, outbound_allow_http=True,
                          outbound_allow_loopback=True, reminder_check_s=0.5)
    stack.services.accounts.create_operator(stack.seed.tenant_id, ADMIN[0], ADMIN[1], role="admin")
    # The watch's world starts at the next minute boundary; it runs at the scenario's speed,
    # so its clock is ahead of the cloud's: the cloud's own inference (due + window + grace,
    # on its clock) does not come into this test, the watch's word does.
    minute = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    start, local = minute - timedelta(seconds=30), minute.astimezone(ZoneInfo(TZ))
    # The morning pills at scenario second 90 (pressed for at 175), the evening ones at 270.
    morning = (local + timedelta(minutes=1)).strftime("%H:%M")
    evening = (local + timedelta(minutes=4)).strftime("%H:%M")
    wid = stack.seed.wearer_id
    with httpx.Client(base_url=stack.url) as admin:
        h = {"X-CSRF-Token": admin.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
             .json()["csrf_token"]}
        if to_centre:
            r = admin.patch("/api/admin/tenant", headers=h, json={"missed_dose_to": "centre"})
            assert r.status_code == 200 and r.json()["missed_dose_to"] == "centre", r.text
        bad = admin.put(f"/api/admin/wearers/{wid}/reminders", headers=h, json={"reminders": [
            {"at": "08:00", "text": "Pills", "days": [7]}]})
        assert bad.status_code == 422, bad.text  # 0 Monday .. 6 Sunday
        r = admin.put(f"/api/admin/wearers/{wid}/reminders", headers=h, json={"reminders": [
            {"id": "am", "at": morning, "text": "Morning pills", "window_min": 3},
            {"id": "pm", "at": evening, "text": "Evening pills", "window_min": 1}]})
        assert r.status_code == 200, r.text
        assert r.json()["devices"][0]["device_id"] == stack.seed.device_id

    scenario = load("medication_reminders")
    scenario.config = {}  # the reminders come from the console, in the cloud's retained config
    scenario.world.start = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    scenario.world.zone_q = int(local.utcoffset().total_seconds()) // 900
    stay, rec = threading.Event(), Recorder()
    result: list = []
    player = threading.Thread(target=lambda: result.append(run_scenario(
        scenario, stack.seed.device_id, stack.seed.device_secret,
        (stack.settings.mqtt_host, stack.settings.mqtt_port), recorder=rec, stay=stay)), daemon=True)
    player.start()
    try:
        def doses():
            with stack.services.sm() as s:
                return {d.reminder_id: (d.status, d.source, d.notified_to)
                        for d in s.scalars(select(ReminderDose))}

        told = "centre" if to_centre else "family"
        assert wait_until(lambda: doses().get("pm", (None, None, None))[2] == told, 60), (doses(), rec.events[-20:])
        # One dose each, on the watch's word: the morning one confirmed, the evening one missed.
        assert doses() == {"am": ("confirmed", "watch", None), "pm": ("missed", "watch", told)}

        # What the wearer saw and felt: each reminder large on the screen and signalled.
        shown = [e["text"] for e in rec.events if e["type"] == "display"]
        assert shown.index("Morning pills") < shown.index("Thank you") < shown.index("Evening pills"), shown
        assert [e["name"] for e in rec.events if e["type"] == "signal"] == ["reminder", "confirm", "reminder"]

        with stack.services.sm() as s:
            cases = s.scalars(select(AlertCase)).all()
            notes = s.scalars(select(Notification)).all()
        if to_centre:
            # The operator's queue has it, below every alarm, as a missed dose.
            assert [(c.kind, c.priority) for c in cases] == [("missed_dose", 4)] and not got
            with httpx.Client(base_url=stack.url) as api:
                api.post("/api/auth/login", json={"username": DEMO_OPERATOR[0], "password": DEMO_OPERATOR[1]})
                view = next(c for c in api.get("/api/cases").json() if c["id"] == cases[0].id)
                assert view["kind"] == "missed_dose"
                timeline = api.get(f"/api/cases/{cases[0].id}").json()["timeline"]
                assert timeline[0]["detail"]["reminder"] == "pm" and timeline[0]["detail"]["text"] == "Evening pills"
        else:
            # The family contact got it through the web hook; no case in the operators' queue.
            assert not cases
            assert len(got) == 1 and got[0]["kind"] == "missed_dose", got
            assert got[0]["contact"]["name"] == "Sophie Martin"
            assert got[0]["message"].startswith('Jeanne Martin did not confirm "Evening pills" due at ' + evening)
            assert [(n.channel, n.ok, n.case_id) for n in notes] == [("webhook", True, None)]

        # The admin page's adherence: from the stored doses.
        with httpx.Client(base_url=stack.url) as admin:
            admin.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
            page = admin.get(f"/api/admin/wearers/{wid}/reminders").json()
        assert page["adherence"]["7"] == {"days": 7, "due": 2, "confirmed": 1, "missed": 1}
        assert [r["id"] for r in page["reminders"]] == ["am", "pm"]
    finally:
        stay.set()
        player.join(30)
    assert result and result[0][0], result
