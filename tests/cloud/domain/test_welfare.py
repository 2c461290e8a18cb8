"""The welfare judgments on a real database (SQLite and PostgreSQL), with a FakeClock:
a silent watch is not an inactive wearer, a missed check-in needs no watch at all,
and daytime hours are counted as a carer counts them (worked by hand below)."""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select, update

from cloud.domain.welfare import daytime_seconds, due_checkin
from cloud.store.models import AlertCase, Wearer

TZ = "Europe/Paris"  # UTC+1 in November


def test_night_hours_do_not_count_as_stillness():
    # Still from 21:00 to 09:00 (local) with nights 22:00-07:00: 21-22 and 07-09, 3 hours.
    since, now = datetime(2026, 11, 22, 20, 0), datetime(2026, 11, 23, 8, 0)  # UTC
    assert daytime_seconds(since, now, TZ, "22:00", "07:00") == 3 * 3600
    # A night that does not cross midnight (a nap 13:00-15:00), over one afternoon: 4 - 2 hours.
    assert daytime_seconds(datetime(2026, 11, 22, 11, 0), datetime(2026, 11, 22, 15, 0), TZ,
                           "13:00", "15:00") == 2 * 3600
    # The check-in of 10:00 local with 30 min to answer: at 10:29 local it is yesterday's, at 10:30 today's.
    assert due_checkin("10:00", 30, TZ, datetime(2026, 11, 22, 9, 29)) == datetime(2026, 11, 21, 9, 0)
    assert due_checkin("10:00", 30, TZ, datetime(2026, 11, 22, 9, 30)) == datetime(2026, 11, 22, 9, 0)


def status(svc, dev, mid, **welfare):
    body = {"v": 1, "mid": mid, "ts": None, "batt": {"pct": 70}, **welfare}
    assert svc.ingestor.handle(f"pers/v1/{dev}/status", json.dumps(body).encode()).accepted


def kinds(svc):
    with svc.sm() as s:
        return s.scalars(select(AlertCase.kind).order_by(AlertCase.id)).all()


def test_a_silent_watch_raises_offline_not_inactivity_and_a_missed_check_in_all_the_same(world):
    svc, clock, seed = world.svc, world.clock, world.seed
    dev = seed.device_id
    with svc.sm() as s:  # 08:00 UTC, 09:00 in Paris; check-in 09:30 local, nights far away
        s.execute(update(Wearer).where(Wearer.id == seed.wearer_id).values(timezone=TZ, welfare={
            "checkin_at": "09:30", "checkin_window_min": 30, "night_from": "23:00", "night_to": "06:00",
            "inactivity_h": 2, "not_worn_min": 30, "set_at": clock.now().isoformat() + "Z"}))
        s.commit()
    monitor = svc.ticker.welfare
    status(svc, dev, "1.1", still_s=600, worn=True, worn_s=600)
    # 2 h 30 later: still for 2 h 40 by the watch's last word, but the watch has said
    # nothing since (heartbeat 3600 s: heard within 1.5 h): no inactivity alarm...
    clock.advance(2.5 * 3600)
    opened = monitor.tick()
    # ...while the check-in of 09:30 (window closed at 10:00) was not answered: raised anyway.
    assert kinds(svc) == ["checkin"] and len(opened) == 1
    # The presence monitor gives the silent watch its own alarm (2.5 heartbeats + grace).
    clock.advance(3600)
    svc.ticker.presence.tick()            # suspect...
    clock.advance(400)
    svc.ticker.presence.tick()            # ...offline after the grace
    assert "offline_joined" in _actions(svc)


def test_a_heard_watch_still_for_daytime_hours_raises_inactivity_once(world):
    svc, clock, seed = world.svc, world.clock, world.seed
    dev = seed.device_id
    with svc.sm() as s:
        s.execute(update(Wearer).where(Wearer.id == seed.wearer_id).values(timezone=TZ, welfare={
            "night_from": "23:00", "night_to": "06:00", "inactivity_h": 2,
            "set_at": clock.now().isoformat() + "Z"}))
        s.commit()
    monitor = svc.ticker.welfare
    status(svc, dev, "1.1", still_s=0)
    clock.advance(3600)
    status(svc, dev, "1.2", still_s=3600)
    assert monitor.tick() == []           # one daytime hour
    clock.advance(3600)
    status(svc, dev, "1.3", still_s=7200)
    assert len(monitor.tick()) == 1 and kinds(svc) == ["inactivity"]
    clock.advance(600)
    status(svc, dev, "1.4", still_s=7800)
    assert monitor.tick() == []           # the same stillness: once
    assert world.sender.sent and world.sender.sent[-1][1]["type"] == "locate"
    status(svc, dev, "1.5", still_s=5)    # moving again: on the case
    assert "moving_again" in _actions(svc)


def _actions(svc):
    from cloud.store.models import CaseEvent
    with svc.sm() as s:
        return s.scalars(select(CaseEvent.action).order_by(CaseEvent.id)).all()
