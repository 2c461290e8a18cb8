# The wearer's welfare: the daily "Are you OK?" check-in (cfg checkin_at, in
# local time, asked for checkin_window_s), whether the wearer moves (the
# accelerometer's activity interrupt, board.moved()) and whether the watch is
# worn (the PPG sensor sees skin, board.worn()). The watch only observes and
# reports (status: still_s, worn, checkin); the cloud judges, with the wearer's
# day hours, and raises the alarms: a dead watch reports nothing, and must not
# pass for a wearer who does not move. A mixin of app.watch.Watch: its state is
# the watch's one list `welfare` (indices below).
import asyncio
from app import netclock
from micropython import const

_STILL_REPORT_MS = const(900000)  # moving again after 15 min still: the cloud hears it at once
_SIGNAL_EVERY_MS = const(120000)  # the question buzzes again while unanswered
_WORN_CHECK_MS = const(600000)    # a PPG look for skin every 10 min (device option worn_check_s)
_MOVED = const(0)    # ticks of the last movement felt
_WORN = const(1)     # [on skin, ticks since] from the PPG's last look, or None before it
_LOOKED = const(2)   # ticks of that look
_ASKING = const(3)   # ["HH:MM", ticks asked, ticks buzzed] while "Are you OK?" waits, else None
_ASKED = const(4)    # (day, "HH:MM") of the last check-in asked


class Welfare:
    def welfare_part(self):
        # What a status carries about the wearer: seconds since the last movement
        # felt (since boot at most: the watch cannot know before), and whether the
        # PPG saw skin at its last look, with seconds since that changed.
        now = self.clock.ticks_ms()
        wf = self.welfare
        part = {"still_s": self.clock.ticks_diff(now, wf[_MOVED]) // 1000}
        if wf[_WORN] is not None:
            part["worn"] = wf[_WORN][0]
            part["worn_s"] = self.clock.ticks_diff(now, wf[_WORN][1]) // 1000
        return part

    def _welfare_check(self):
        # Every few seconds (app/routine.py).
        now = self.clock.ticks_ms()
        wf = self.welfare
        if self.board.moved():
            still = self.clock.ticks_diff(now, wf[_MOVED])
            wf[_MOVED] = now
            if still >= _STILL_REPORT_MS:
                print("welfare: moving again after", still // 1000, "s")
                self._welfare_status(None)
        if wf[_ASKING] is not None:
            self._asking_check(now)
        else:
            self._checkin_due()
        every = self.device.get("worn_check_s", _WORN_CHECK_MS // 1000) * 1000
        # The PPG sensor is one: not while a heart rate is read, nor during an alarm
        # (the alarm's reading comes first, and its heap).
        if (hasattr(self.board, "worn") and not self._hr_busy and not self.alarm.active()
                and self.clock.ticks_diff(now, wf[_LOOKED]) >= every):
            wf[_LOOKED] = now
            self._hr_busy = True
            asyncio.create_task(self._worn_check())

    def _checkin_due(self):
        at = self.cfg.get("checkin_at")
        wall = netclock.local(self.clock) if at else None
        if wall is None:
            return  # no check-in set, or no time yet: the cloud still expects the answer
        day, rem = divmod(wall, 86400)
        # Once a day per time: a time the carer changes to later today is asked too.
        if "%02d:%02d" % (rem // 3600, rem % 3600 // 60) == at and self.welfare[_ASKED] != (day, at):
            self.welfare[_ASKED] = (day, at)
            now = self.clock.ticks_ms()
            self.welfare[_ASKING] = [at, now, now]
            print("welfare: check-in", at)
            self.ui.show("Are you OK? Press the button", pin=True)
            self._buzz()

    def _asking_check(self, now):
        at, since, buzzed = self.welfare[_ASKING]
        if self.clock.ticks_diff(now, since) >= self.cfg.get("checkin_window_s", 1800) * 1000:
            # Unanswered: the cloud sees no answer and raises the welfare alarm itself.
            print("welfare: check-in", at, "not answered")
            self.welfare[_ASKING] = None
            self.ui.unpin()
        elif self.clock.ticks_diff(now, buzzed) >= _SIGNAL_EVERY_MS:
            self.welfare[_ASKING][2] = now
            self._buzz()

    def _buzz(self):
        if hasattr(self.board, "signal"):
            self.board.signal("reminder")
        else:
            self.ui.vibrate(600)

    def checkin_ok(self):
        # The wearer pressed while asked: the answer goes up at once.
        at = self.welfare[_ASKING][0]
        self.welfare[_ASKING] = None
        print("welfare: check-in", at, "answered")
        self.ui.show("Thank you")
        if hasattr(self.board, "signal"):
            self.board.signal("confirm")
        self._welfare_status({"at": at, "ok": True})

    def _welfare_status(self, checkin):
        m = self.status_msg()
        if checkin is not None:
            m["checkin"] = checkin
        self.outbox.put("status", m)
        self.session.kick()
        self.radio.want("welfare")
        asyncio.create_task(self._release_when_sent("welfare"))

    async def _worn_check(self):
        try:
            on = await self.board.worn()
        except Exception as e:
            print("welfare: worn check failed", repr(e))
            return
        finally:
            self._hr_busy = False
        wf = self.welfare
        if on is None or (wf[_WORN] is not None and wf[_WORN][0] == on):
            return
        first = wf[_WORN] is None
        wf[_WORN] = [on, self.clock.ticks_ms()]
        print("welfare: worn" if on else "welfare: not worn")
        if not first or not on:
            self._welfare_status(None)
