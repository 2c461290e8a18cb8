"""Missed medication doses when the watch says nothing, on SQLite and PostgreSQL:
the cloud infers the miss only once the dose's window and the grace have passed
(on its clock), tells someone (here nobody can be reached by the family channels,
so the centre gets a low-priority case), and a confirmation that the watch's
outbox delivers later turns that same dose confirmed: one dose, counted once,
whatever arrives twice. The wearer lives in Paris; 2026-11-22 is a Sunday, CET (UTC+1)."""
from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from cloud.domain.reminders import ReminderAdmin
from cloud.store.models import AlertCase, CaseEvent, Operator, ReminderDose, Wearer


def unix(naive_utc: datetime) -> int:
    return int(naive_utc.replace(tzinfo=UTC).timestamp())


def report(world, mid, **reminder):
    body = {"v": 1, "mid": mid, "ts": reminder.get("at"), "batt": {"pct": 70}, "reminder": reminder}
    return world.svc.ingestor.handle(f"pers/v1/{world.seed.device_id}/status", json.dumps(body).encode())


def doses(world):
    with world.svc.sm() as s:
        return [(d.day.isoformat(), d.reminder_id, d.status, d.source, d.late_report, d.notified_to)
                for d in s.scalars(select(ReminderDose).order_by(ReminderDose.id))]


def test_a_silent_watch_gets_a_missed_dose_then_its_late_confirmation_counts_once(world):
    svc, clock = world.svc, world.clock  # 2026-11-22 08:00 UTC: 09:00 in Paris
    svc.accounts.create_operator(world.seed.tenant_id, "nurse-admin", "a-long-password", role="admin")
    with svc.sm() as s:
        s.get_one(Wearer, world.seed.wearer_id).timezone = "Europe/Paris"
        s.commit()
        admin = s.scalar(select(Operator).where(Operator.username == "nurse-admin"))
    reminders = ReminderAdmin(svc.admin)
    out = reminders.set_schedule(admin, world.seed.wearer_id, [
        {"at": "09:30", "text": "Morning pills", "confirm": True},          # due 08:30 UTC, 30 min by default
        {"at": "07:00", "text": "Too early today", "confirm": True},        # before the plan: not judged today
        {"at": "12:00", "text": "Water the plants"}])                       # asks for nothing
    assert [r["id"] for r in out["reminders"]] == ["r1", "r2", "r3"]
    device_id, cfg = world.sender.configs[-1]
    assert device_id == world.seed.device_id and cfg["reminders"][0] == {
        "at": "09:30", "text": "Morning pills", "id": "r1", "confirm": True, "window_min": 30}
    assert cfg["reminders"][2] == {"at": "12:00", "text": "Water the plants", "id": "r3"}

    sweep = svc.ticker.reminders
    clock.advance(3600 + 119)  # 09:01:59 UTC: the window closed at 09:00, the grace runs to 09:02
    assert sweep.run(clock.now())["missed"] == 0 and doses(world) == []
    clock.advance(2)
    assert sweep.run(clock.now()) == {"plans": 1, "missed": 1, "told": 1}
    # Nobody reachable on the family's channels (no web hook, e-mail or SMS set up): the centre.
    assert doses(world) == [("2026-11-22", "r1", "missed", "cloud", False, "centre")]
    with svc.sm() as s:
        (case,) = s.scalars(select(AlertCase)).all()
        assert (case.kind, case.priority, case.status) == ("missed_dose", 4, "routed")
    assert sweep.run(clock.now())["told"] == 0  # told once

    # The watch was offline; its outbox now delivers the press of 08:40 UTC, twice.
    pressed = {"id": "r1", "due": unix(datetime(2026, 11, 22, 8, 30)), "state": "confirmed",
               "at": unix(datetime(2026, 11, 22, 8, 40))}
    assert report(world, "4.17", **pressed).accepted
    assert report(world, "4.17", **pressed).accepted
    assert doses(world) == [("2026-11-22", "r1", "confirmed", "cloud", True, "centre")]
    with svc.sm() as s:
        late = s.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case.id,
                                                        CaseEvent.action == "dose_confirmed_late")).all()
        assert late == ["dose_confirmed_late"]

    # The next day the watch says "missed" itself, before the cloud would: still one dose.
    clock.advance(86400)
    report(world, "4.30", id="r1", due=unix(datetime(2026, 11, 23, 8, 30)), state="missed")
    sweep.run(clock.now())
    # r1 as the watch said; r2 (07:00, after the plan this time) inferred, as nothing came.
    assert doses(world)[1:] == [("2026-11-23", "r1", "missed", "watch", False, "centre"),
                                ("2026-11-23", "r2", "missed", "cloud", False, "centre")]
    page = reminders.schedule(admin, world.seed.wearer_id)
    assert page["adherence"]["7"] == {"days": 7, "due": 3, "confirmed": 1, "missed": 2}
    assert page["adherence"]["30"]["due"] == 3
