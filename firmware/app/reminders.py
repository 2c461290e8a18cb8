# Medication reminders: fired in the wearer's local time (the network's zone,
# app/netclock.py), shown and signalled (motor and buzzer), confirmed with the
# black button; the outcome goes up as a status with a `reminder` part
# (docs/protocol.md). Functions of the watch `w`, imported only by a watch whose
# config has reminders (a module loaded stays in the heap for good); its state,
# on the watch: _fired (reminder id -> local day it fired, on flash so that a
# reboot never fires a dose twice) and _dose (the dose waiting for a press:
# [id, due UTC, deadline UTC]).
#
# A reminder fires at the first check at or after its local minute, within the
# hour after: a daylight-saving change that skips 02:00-03:00 fires a 02:30
# reminder at 03:00, and one that repeats 02:00-03:00 fires it once (the local
# day is the key). A new zone (travel) moves the local time at once.
from app import flash, netclock
from micropython import const

_CATCH_UP_MIN = const(60)
_WINDOW_MIN = const(30)   # the config's window_min when absent


_FIRED = "reminders.json"


def _fired_days(w):
    if w._fired is None:
        w._fired = flash.read_json(flash.join(w.board.flash_dir, _FIRED)) or {}
    return w._fired


def check(w):
    wall = w.clock.wall()
    if wall is None:
        return
    d = w._dose
    if d is not None and wall >= d[2]:
        _done(w, "missed", None)
    rems = w.cfg.get("reminders") or []
    if not rems:
        return
    local = netclock.local(w.clock)
    day, rem = divmod(local, 86400)
    minute = rem // 60
    fired = _fired_days(w)
    for r in rems:
        at = r.get("at") if isinstance(r, dict) else None
        try:
            m = int(at[:2]) * 60 + int(at[3:5])
        except (TypeError, ValueError):
            continue
        rid = r.get("id") or at
        days = r.get("days")
        if not 0 <= minute - m < _CATCH_UP_MIN or fired.get(rid) == day:
            continue
        if isinstance(days, list) and (day + 3) % 7 not in days:  # 1970-01-01 was a Thursday; 0 is Monday
            continue
        fired[rid] = day
        flash.write_json(flash.join(w.board.flash_dir, _FIRED), fired)
        _fire(w, r, rid, day * 86400 + m * 60 - (local - wall), wall)


def _fire(w, r, rid, due, wall):
    print("reminder:", r.get("text"))
    w.ui.show(r.get("text") or "Reminder", pin=True)
    if hasattr(w.board, "signal"):
        w.board.signal("reminder")
    else:
        w.ui.vibrate(600)
    if r.get("confirm"):
        if w._dose is not None:  # an earlier one still unconfirmed: this one takes the screen
            _done(w, "missed", None)
        w._dose = [rid, due, wall + (r.get("window_min") or _WINDOW_MIN) * 60]


def confirm(w):
    # The black button, while a dose waits for it.
    _done(w, "confirmed", w.clock.wall())
    w.ui.show("Thank you")
    if hasattr(w.board, "signal"):
        w.board.signal("confirm")


def _done(w, state, at):
    rid, due, _ = w._dose
    w._dose = None
    print("reminder %s: %s" % (rid, state))
    if state == "missed":
        w.ui.unpin()
    msg = w.status_msg()
    part = {"id": rid, "due": due, "state": state}
    if at is not None:
        part["at"] = at
    msg["reminder"] = part
    w.outbox.put("status", msg)
    w.radio.want("reminder")
    import asyncio
    asyncio.create_task(w._release_when_sent("reminder"))


def to_next_local_s(w):
    # Reminders and the "Are you OK?" check-in (app/welfare.py) fire from the
    # running app at a local minute: a deep sleep (app/watch.py) ends at the next
    # one, and the timer wake checks in, which sets the time and the zone again.
    # Seconds to it; None to stay awake: the time is unknown, one fired within the
    # last minute, or a press is awaited (that lives in RAM).
    mins = []
    for at in [r.get("at") for r in w.cfg.get("reminders") or [] if isinstance(r, dict)] + [w.cfg.get("checkin_at")]:
        try:
            mins.append(int(at[:2]) * 60 + int(at[3:5]))
        except (TypeError, ValueError):
            pass
    local = netclock.local(w.clock)
    if not mins or local is None or w._dose is not None or w.welfare[3] is not None:
        return None
    now_s = local % 86400
    if any((now_s - m * 60) % 86400 < 60 for m in mins):
        return None
    return min((m * 60 - now_s) % 86400 for m in mins)
