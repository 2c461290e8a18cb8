# The wearer's welfare: the daily "Are you OK?" check-in (cfg checkin_at, in
# local time, asked for checkin_window_s), whether the wearer moves (the
# accelerometer's activity interrupt, board.moved()) and whether the watch is
# worn (the PPG sensor sees skin, board.worn()). The watch only observes and
# reports (status: still_s, worn, worn_s, checkin); the cloud judges, with the
# wearer's day hours, and raises the alarms: a dead watch reports nothing, and
# must not pass for a wearer who does not move.
# Movement is stamped by app/routine.py every few seconds; this module comes
# only when it has work (a check-in set, a look for skin due, the wearer moving
# after long stillness): every module loaded stays in the heap for good. Its
# state is the watch's one list `welfare` (indices below, set in app/watch.py).
import asyncio
from app import netclock
from micropython import const

STILL_REPORT_MS = const(900000)  # moving again after 15 min still: the cloud hears it at once
WORN_CHECK_MS = const(600000)    # a PPG look for skin every 10 min (device option worn_check_s)
_SIGNAL_EVERY_MS = const(120000)  # the question buzzes again while unanswered
MOVED = const(0)    # ticks of the last movement felt
WORN = const(1)     # [on skin, ticks since] from the PPG's last look, or None before it
LOOKED = const(2)   # ticks of that look
ASKING = const(3)   # ["HH:MM", ticks asked, ticks buzzed] while "Are you OK?" waits, else None
_ASKED = const(4)   # (day, "HH:MM") of the last check-in asked


def check(w, now, still_ms):
    # still_ms: how long the wearer had been still when they moved now (0: no movement).
    wf = w.welfare
    if still_ms >= STILL_REPORT_MS:
        print("welfare: moving again after", still_ms // 1000, "s")
        _status(w, None)
    if wf[ASKING] is not None:
        _asking(w, now)
    else:
        _due(w)
    every = w.device.get("worn_check_s", WORN_CHECK_MS // 1000) * 1000
    # The PPG sensor is one: not while a heart rate is read, nor during an alarm
    # (the alarm's reading comes first, and its heap).
    if (hasattr(w.board, "worn") and not w._hr_busy and not w.alarm.active()
            and w.clock.ticks_diff(now, wf[LOOKED]) >= every):
        wf[LOOKED] = now
        w._hr_busy = True
        asyncio.create_task(_look(w))


def _due(w):
    at = w.cfg.get("checkin_at")
    wall = netclock.local(w.clock) if at else None
    if wall is None:
        return  # no check-in set, or no time yet: the cloud still expects the answer
    day, rem = divmod(wall, 86400)
    # Once a day per time: a time the carer changes to later today is asked too.
    if "%02d:%02d" % (rem // 3600, rem % 3600 // 60) == at and w.welfare[_ASKED] != (day, at):
        w.welfare[_ASKED] = (day, at)
        now = w.clock.ticks_ms()
        w.welfare[ASKING] = [at, now, now]
        print("welfare: check-in", at)
        w.ui.show("Are you OK? Press the button", pin=True)
        _buzz(w)


def _asking(w, now):
    asking = w.welfare[ASKING]
    if w.clock.ticks_diff(now, asking[1]) >= w.cfg.get("checkin_window_s", 1800) * 1000:
        # Unanswered: the cloud sees no answer and raises the welfare alarm itself.
        print("welfare: check-in", asking[0], "not answered")
        w.welfare[ASKING] = None
        w.ui.unpin()
    elif w.clock.ticks_diff(now, asking[2]) >= _SIGNAL_EVERY_MS:
        asking[2] = now
        _buzz(w)


def _buzz(w):
    if hasattr(w.board, "signal"):
        w.board.signal("reminder")
    else:
        w.ui.vibrate(600)


def checkin_ok(w):
    # The wearer pressed while asked: the answer goes up at once.
    at = w.welfare[ASKING][0]
    w.welfare[ASKING] = None
    print("welfare: check-in", at, "answered")
    w.ui.show("Thank you")
    if hasattr(w.board, "signal"):
        w.board.signal("confirm")
    _status(w, {"at": at, "ok": True})


def _status(w, checkin):
    m = w.status_msg()
    if checkin is not None:
        m["checkin"] = checkin
    w.outbox.put("status", m)
    w.session.kick()
    w.radio.want("welfare")
    asyncio.create_task(w._release_when_sent("welfare"))


async def _look(w):
    try:
        on = await w.board.worn()
    except Exception as e:
        print("welfare: worn check failed", repr(e))
        return
    finally:
        w._hr_busy = False
    wf = w.welfare
    if on is None or (wf[WORN] is not None and wf[WORN][0] == on):
        return
    first = wf[WORN] is None
    wf[WORN] = [on, w.clock.ticks_ms()]
    print("welfare: worn" if on else "welfare: not worn")
    if not first or not on:
        _status(w, None)
