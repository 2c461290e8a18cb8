# Medication reminders through the real Watch (app/reminders.py) with a fake board.
# The local time is set as the modem gives it: AT+CCLK? lines in the form of
# 3GPP TS 27.007 8.15, "yy/MM/dd,hh:mm:ss±zz", zz in quarter hours east of UTC
# (the SIMCom SIM7600/A76xx AT manuals show the same, e.g. "+CCLK: "08/11/28,12:30:35+32"").
# The daylight-saving changes are the EU's (Directive 2000/84/EC: 01:00 UTC on the
# last Sunday of March and of October): in 2026, 29 March and 25 October; Paris
# goes from +04 (CET) to +08 (CEST) and back. New York in summer is -16 (EDT).
import mpytest
from mpytest import eq
from fakeboard import FakeBoard, FakeModem, sent
from app import flash, netclock
from app.watch import Watch

BASE = mpytest.tmpdir("reminders")
_n = [0]
PILLS = {"id": "am", "at": "02:30", "text": "Pills", "confirm": True, "window_min": 30}


def new_watch(reminders, fdir=None):
    if fdir is None:
        _n[0] += 1
        fdir = BASE + "/w%d" % _n[0]
        FakeBoard(fdir)  # writes device.json
        flash.write_json(fdir + "/config.json", {"version": 1, "reminders": reminders})
    w = Watch(FakeBoard(fdir), install="ut", boot=1)
    w.modem = FakeModem()
    return w, fdir


def at(w, line):
    # The modem's clock read (app/radio.py does it at each wake), then the periodic check.
    assert netclock.from_cclk(w.clock, '+CCLK: "%s"' % line)
    w._reminder_check()


def reports(w):
    return [p["reminder"] for k, p in sent(w) if k == "status" and "reminder" in p]


def test_spring_forward_fires_a_skipped_time_once_right_after_the_jump():
    w, _ = new_watch([dict(PILLS, days=[6])])  # Sundays
    at(w, "26/03/29,01:59:40+04")
    eq(w.board.shown, [])
    at(w, "26/03/29,03:00:00+08")  # 02:00 CET became 03:00 CEST: 02:30 never came
    eq(w.board.shown, ["Pills"])
    eq(w.board.signals, ["reminder"])
    w.clock.set_wall(w.clock.wall() + 60)
    w.on_click()  # the wearer confirms
    eq(w.board.shown[-1], "Thank you")
    (r,) = reports(w)
    eq((r["id"], r["state"], r["at"]), ("am", "confirmed", w.clock.wall()))
    # The dose's local time 02:30 on that day, at the offset of the moment (+2 h): 00:30 UTC.
    eq(r["due"], 1774744200)
    at(w, "26/03/29,03:40:00+08")
    eq(w.board.shown[-1], "Thank you")  # once a day


def test_fall_back_does_not_fire_the_repeated_hour_twice_and_an_unconfirmed_dose_is_missed():
    w, _ = new_watch([PILLS])
    at(w, "26/10/25,02:30:10+08")  # the first 02:30 (CEST)
    eq(w.board.shown, ["Pills"])
    at(w, "26/10/25,02:59:50+08")
    eq(reports(w), [])  # still within its 30 minutes
    at(w, "26/10/25,02:00:30+04")  # 03:00 CEST is 02:00 CET: the window has closed
    eq([(r["id"], r["state"]) for r in reports(w)], [("am", "missed")])
    at(w, "26/10/25,02:30:10+04")  # the second 02:30 (CET)
    eq(w.board.shown, ["Pills"])
    eq(len(reports(w)), 1)
    w.on_click()  # nothing to confirm any more: the watch face, no report
    eq(len(reports(w)), 1)


def test_a_new_zone_moves_the_reminder_with_the_wearer_and_the_first_form_still_works():
    w, _ = new_watch([{"at": "08:00", "text": "Old form"},
                      {"id": "bp", "at": "08:00", "text": "Blood pressure", "confirm": True, "days": [0]}])
    at(w, "26/06/10,07:59:40-16")  # a Wednesday in New York (EDT)
    eq(w.board.shown, [])
    at(w, "26/06/10,08:00:05-16")
    eq(w.board.shown, ["Old form"])  # the Monday one waits for Monday
    eq(reports(w), [])  # the first form asks for no confirmation and reports nothing
    at(w, "26/06/15,08:00:05+08")  # Monday, back in Paris
    eq(w.board.shown[-1], "Blood pressure")


def test_a_reboot_does_not_fire_the_same_dose_again():
    w, fdir = new_watch([PILLS])
    at(w, "26/01/12,02:30:05+04")
    eq(w.board.shown, ["Pills"])
    w2, _ = new_watch(None, fdir)  # the same flash, a new boot
    at(w2, "26/01/12,02:35:05+04")
    eq(w2.board.shown, [])
    at(w2, "26/01/13,02:30:05+04")  # the next day it fires
    eq(w2.board.shown, ["Pills"])


mpytest.run(globals())
