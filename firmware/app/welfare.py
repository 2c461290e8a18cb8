# The wearer's welfare: the daily "Are you OK?" check-in (cfg checkin_at, in
# local time, asked for checkin_window_s), whether the wearer moves (the
# accelerometer's activity interrupt, board.moved()) and whether the watch is
# worn (the PPG sensor sees skin, board.worn()). The watch only observes and
# reports (status: still_s, worn, checkin); the cloud judges, with the wearer's
# day hours, and raises the alarms: a dead watch reports nothing, and must not
# pass for a wearer who does not move. A mixin of app.watch.Watch: its state is
# the watch's moved_at, worn, asking and _asked_day.
import asyncio
from app import netclock
from micropython import const

_STILL_REPORT_MS = const(900000)  # moving again after 15 min still: the cloud hears it at once
_SIGNAL_EVERY_MS = const(120000)  # the question buzzes again while unanswered
_WORN_CHECK_MS = const(600000)    # a PPG look for skin every 10 min (device option worn_check_s)


class Welfare:
    def welfare_part(self):
        # What a status carries about the wearer: seconds since the last movement
        # felt (since boot at most: the watch cannot know before), and whether the
        # PPG saw skin at its last look, with seconds since that changed.
        now = self.clock.ticks_ms()
        part = {"still_s": self.clock.ticks_diff(now, self.moved_at) // 1000}
        if self.worn is not None:
            part["worn"] = self.worn[0]
            part["worn_s"] = self.clock.ticks_diff(now, self.worn[1]) // 1000
        return part

    def _welfare_check(self):
        # Every few seconds (app/routine.py).
        now = self.clock.ticks_ms()
        if self.board.moved():
            still = self.clock.ticks_diff(now, self.moved_at)
            self.moved_at = now
            if still >= _STILL_REPORT_MS:
                print("welfare: moving again after", still // 1000, "s")
                self._welfare_status(None)
        if self.asking is not None:
            self._asking_check(now)
        else:
            self._checkin_due()
        every = self.device.get("worn_check_s", _WORN_CHECK_MS // 1000) * 1000
        if hasattr(self.board, "worn") and (self._worn_at is None
                                            or self.clock.ticks_diff(now, self._worn_at) >= every):
            self._worn_at = now
            asyncio.create_task(self._worn_check())

    def _checkin_due(self):
        at = self.cfg.get("checkin_at")
        wall = netclock.local(self.clock) if at else None
        if wall is None:
            return  # no check-in set, or no time yet: the cloud still expects the answer
        day, rem = divmod(wall, 86400)
        # Once a day per time: a time the carer changes to later today is asked too.
        if "%02d:%02d" % (rem // 3600, rem % 3600 // 60) == at and self._asked_day != (day, at):
            self._asked_day = (day, at)
            now = self.clock.ticks_ms()
            self.asking = [at, now, now]
            print("welfare: check-in", at)
            self.ui.show("Are you OK? Press the button", pin=True)
            self._buzz()

    def _asking_check(self, now):
        at, since, buzzed = self.asking
        if self.clock.ticks_diff(now, since) >= self.cfg.get("checkin_window_s", 1800) * 1000:
            # Unanswered: the cloud sees no answer and raises the welfare alarm itself.
            print("welfare: check-in", at, "not answered")
            self.asking = None
            self.ui.unpin()
        elif self.clock.ticks_diff(now, buzzed) >= _SIGNAL_EVERY_MS:
            self.asking[2] = now
            self._buzz()

    def _buzz(self):
        if hasattr(self.board, "signal"):
            self.board.signal("reminder")
        else:
            self.ui.vibrate(600)

    def checkin_ok(self):
        # The wearer pressed while asked: the answer goes up at once.
        at = self.asking[0]
        self.asking = None
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
        if on is None or (self.worn is not None and self.worn[0] == on):
            return
        first = self.worn is None
        self.worn = [on, self.clock.ticks_ms()]
        print("welfare: worn" if on else "welfare: not worn")
        if not first or not on:
            self._welfare_status(None)
