"""Welfare, end to end, with nothing stood in: the real firmware under `micropython`
in hwsim (hwsim/scenarios/welfare_day.toml), the embedded Mosquitto, the real cloud
(SQLite and PostgreSQL) and a web hook receiver on loopback in the family's place.

The carer (an admin, through the admin API) sets Jeanne's check-in time, night
hours, inactivity and not-worn limits; the time goes to the watch in its config.
The watch starts at 14 %: its low-battery alert opens a technical case ("Battery
14 %: charge today") and her daughter is told once, not on every report. At the
check-in time the watch shows "Are you OK?" and vibrates; Jeanne presses, the
answer goes up, and the cloud's judgment after the window opens nothing. The next
check-in is not answered: the cloud, on its own clock, opens a welfare case and,
nobody acting on it, the cascade tells her daughter. She walks, then stays still:
the cloud opens "No movement since ..." and asks the watch where it is. She takes
the watch off: "Watch not worn since ...".

The cloud's clock is the real one and the watch's runs 50 times faster, so the
cloud's judgments are made with ``WelfareMonitor.tick(now)`` at the time they
would be due (the domain takes its time as a parameter for this): the monitor
running in the service finds nothing due meanwhile."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select, update

from cloud.seed import DEMO_ADMIN, DEMO_OPERATOR
from cloud.store.models import AlertCase, Device, Wearer
from hwsim.events import Recorder
from hwsim.runner import Watch
from hwsim.scenario import load
from tests.console.test_truth import receiver  # noqa: F401 (a fixture)

TZ = "Europe/Paris"
ASK = "Are you OK? Press the button"


def wait_until(fn, timeout: float, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(step)
    return fn()


def minute_ahead(utc_s: float, minutes: int) -> tuple[str, datetime]:
    """The local "HH:MM" at least ``minutes`` ahead of the watch's clock, and that
    minute as naive UTC (when the cloud expects the answer)."""
    at = datetime.fromtimestamp(utc_s, UTC).replace(second=0, microsecond=0) + timedelta(minutes=minutes + 1)
    return at.astimezone(ZoneInfo(TZ)).strftime("%H:%M"), at.replace(tzinfo=None)


def test_a_welfare_day_reaches_the_watch_the_console_and_the_family(stack_factory, receiver):  # noqa: F811
    url, got = receiver

    def jeanne(sm, seed):
        with sm() as s:
            s.execute(update(Wearer).where(Wearer.id == seed.wearer_id).values(timezone=TZ))
            s.commit()

    stack = stack_factory(before_start=jeanne, webhook_url=url, outbound_allow_http=True,
                          outbound_allow_loopback=True, cascade_after_s=2, escalate_unclaimed_s=3600)
    svc, wid, dev = stack.services, stack.seed.wearer_id, stack.seed.device_id
    monitor = svc.ticker.welfare
    scenario = load("welfare_day")
    now = datetime.now(UTC)
    scenario.world.zone_q = int(now.astimezone(ZoneInfo(TZ)).utcoffset().total_seconds() // 900)
    # Nights far from now: every hour of this test is a daytime hour.
    night = [(now + timedelta(hours=h)).astimezone(ZoneInfo(TZ)).strftime("%H:00") for h in (10, 12)]
    admin, ops = httpx.Client(base_url=stack.url), httpx.Client(base_url=stack.url)
    h = {"X-CSRF-Token": admin.post("/api/auth/login", json={"username": DEMO_ADMIN[0], "password": DEMO_ADMIN[1]})
         .json()["csrf_token"]}
    oh = {"X-CSRF-Token": ops.post("/api/auth/login", json={"username": DEMO_OPERATOR[0],
                                                            "password": DEMO_OPERATOR[1]}).json()["csrf_token"]}

    def settings(at: str, window_min: int) -> None:
        r = admin.put(f"/api/admin/wearers/{wid}/welfare", headers=h, json={
            "checkin_at": at, "checkin_window_min": window_min, "night_from": night[0], "night_to": night[1],
            "inactivity_h": 1, "not_worn_min": 10})
        assert r.status_code == 200, r.text
        assert r.json()["devices"] == [dev]

    def case_of(kind: str) -> AlertCase | None:
        with svc.sm() as s:
            return s.scalar(select(AlertCase).where(AlertCase.kind == kind))

    def close(case_id: int) -> dict:
        assert ops.post(f"/api/cases/{case_id}/claim", headers=oh).status_code == 200
        r = ops.post(f"/api/cases/{case_id}/resolve", headers=oh, json={"outcome": "wearer_ok"})
        assert r.status_code == 200, r.text
        return r.json()

    def state() -> dict:
        with svc.sm() as s:
            return dict(s.get_one(Device, dev).welfare_state or {})

    rec = Recorder()
    try:
        with Watch(dev, stack.seed.device_secret, (stack.settings.mqtt_host, stack.settings.mqtt_port),
                   scenario, recorder=rec) as w:
            # --- low battery: a technical case in plain words; the daughter is told once ------------
            assert w.wait_display("Battery low - please charge", 60), w.displays
            battery = wait_until(lambda: case_of("low_battery"), 20)
            assert battery is not None, rec.events[-10:]
            told = wait_until(lambda: [m for m in got if m["kind"] == "low_battery"], 15)
            pct = battery.batt_pct
            assert pct is not None and pct <= 15
            assert told and f"{pct} % battery left" in told[0]["message"], told
            assert told[0]["contact"]["name"] == "Sophie Martin"
            view = ops.get(f"/api/cases/{battery.id}").json()
            assert view["reason"] == f"Battery {pct} %: charge today" and view["priority"] == 2
            close(battery.id)

            # --- the check-in, answered ---------------------------------------------------------
            # Set once the watch is online (it is, since its alert came): the config reaches it
            # at once, minutes before the time on its own clock.
            at1, due1 = minute_ahead(w.world.utc(), 3)
            settings(at1, 5)
            asked = w.wait_for(lambda e: e["type"] == "display" and e["text"] == ASK, 600)
            assert asked, [e["line"] for e in rec.of("log") if "welfare" in e["line"] or "config" in e["line"]]
            buzz = w.wait_for(lambda e: e["type"] == "vibrate" and e.get("pattern") == "reminder", 30)
            assert buzz and abs(buzz["t"] - asked["t"]) < 1
            w.press("black", 0.3)
            assert w.wait_display("Thank you", 30)
            assert wait_until(lambda: state().get("checkin_ok_for") == at1, 20), state()
            # Once its window has closed, the cloud finds the answer: nothing opens.
            assert monitor.tick(due1 + timedelta(minutes=5, seconds=30)) == []
            # The watch reported the low battery many times since (statuses): one message.
            assert len([m for m in got if m["kind"] == "low_battery"]) == 1

            # --- the next check-in, unanswered: the cloud raises it on its own clock --------------
            at2, due2 = minute_ahead(w.world.utc(), 3)
            settings(at2, 2)
            second = w.wait_for(lambda e: e["type"] == "display" and e["text"] == ASK, 600, start=len(rec.events))
            assert second, w.displays
            assert w.wait_for(lambda e: e["type"] == "log" and f"check-in {at2} not answered" in e["line"], 300)
            opened = monitor.tick(due2 + timedelta(minutes=2, seconds=30))
            assert len(opened) == 1
            checkin = case_of("checkin")
            assert checkin is not None and checkin.id == opened[0] and checkin.priority == 2
            view = ops.get(f"/api/cases/{checkin.id}").json()
            assert view["reason"] == f"No answer to the {at2} \"Are you OK?\" within 2 min"
            # Nobody acts on it: the escalation's cascade tells the first contact (at the same
            # cloud time: the case was opened at the check-in's deadline).
            svc.ticker.escalator.tick(due2 + timedelta(minutes=2, seconds=33))
            cascade = wait_until(lambda: [m for m in got if m["kind"] == "checkin"], 20)
            assert cascade and "did not answer the daily" in cascade[0]["message"], got
            close(checkin.id)
            assert monitor.tick(due2 + timedelta(minutes=3)) == []  # raised once

            # --- inactivity: she walks, then nothing --------------------------------------------
            w.accel("walking")
            moved = wait_until(lambda: state().get("moved_at"), 20)
            assert moved and datetime.fromisoformat(moved.rstrip("Z")) > datetime.now(UTC).replace(tzinfo=None) - \
                timedelta(minutes=1), state()
            since = datetime.fromisoformat(moved.rstrip("Z"))
            assert monitor.tick(since + timedelta(minutes=50)) == []   # 50 daytime minutes: not yet
            opened = monitor.tick(since + timedelta(minutes=61))
            still = case_of("inactivity")
            assert still is not None and opened == [still.id] and still.priority == 1
            local = since.replace(tzinfo=UTC).astimezone(ZoneInfo(TZ)).strftime("%H:%M")
            assert ops.get(f"/api/cases/{still.id}").json()["reason"].startswith(f"No movement since {local}")
            # The cloud asks the watch where she is: the answer is the case's position.
            assert wait_until(lambda: ops.get(f"/api/cases/{still.id}").json()["location"], 20), rec.events[-10:]
            close(still.id)

            # --- not worn -----------------------------------------------------------------------
            w.set_skin_contact(False)
            off = wait_until(lambda: state().get("off_since"), 30)
            assert off and state().get("worn") is False, state()
            off_at = datetime.fromisoformat(off.rstrip("Z"))
            opened = monitor.tick(off_at + timedelta(minutes=11))
            gone = case_of("not_worn")
            assert gone is not None and opened == [gone.id] and gone.priority == 3
            local = off_at.replace(tzinfo=UTC).astimezone(ZoneInfo(TZ)).strftime("%H:%M")
            assert ops.get(f"/api/cases/{gone.id}").json()["reason"] == f"Watch not worn since {local}"
            # Put back on: the case says so.
            w.set_skin_contact(True)
            back = wait_until(lambda: [e for e in ops.get(f"/api/cases/{gone.id}").json()["timeline"]
                                       if e["action"] == "worn_again"], 60)  # a modem slow to come back
            assert back, rec.events[-10:]
    finally:
        admin.close()
        ops.close()
