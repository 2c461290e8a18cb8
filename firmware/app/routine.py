# The watch's routine: the check-ins (wake the radio, say hello, drain the
# outbox, take queued commands, sleep) and the periodic checks (accelerometer,
# tracking, pulse, reminders, battery). A mixin of app.watch.Watch: its state
# is the watch's tracking window (track_until, track_s, _track_next, set by a
# `track` command) and _low_path.
import asyncio
from app import flash, messages
from micropython import const

_CHECKIN_TIMEOUT_MS = const(180000)
_CHECKIN_SETTLE_MS = const(3000)  # queued commands arrive just after the subscription
_SYNC_POLL_MS = const(250)
_TICK_MS = const(500)  # the periodic checks: the accelerometer FIFO read every tick
_BATTERY_CHECK_MS = const(60000)
_REMINDER_CHECK_MS = const(20000)
_VITALS_CHECK_MS = const(5000)  # app/vitals.py counts on this period
_WELFARE_CHECK_MS = const(5000)  # movement stamped; app/welfare.py: the check-in, the PPG's look for skin
_STILL_REPORT_MS = const(900000)  # app/welfare.py STILL_REPORT_MS
_WORN_CHECK_S = const(600)        # app/welfare.py WORN_CHECK_MS, in seconds
_EMPTY_PCT = const(1)  # below this the cell is protected: shut down cleanly


class Routine:
    async def checkins(self):
        # Wake the radio, say hello, drain the outbox, take queued commands, sleep.
        why, now_s, mem = self.board.rtc()
        if why == "accel" and mem.startswith(b"checkin "):
            # Woken from deep sleep by motion: the check-in keeps the hour it had
            # (app/watch.py _deep_sleep wrote it to RTC memory, on the RTC's clock).
            try:
                wait = max(0, min(int(mem[8:]) - now_s, self.cfg.get("heartbeat_s", 3600))) * 1000
            except ValueError:
                wait = 0
            self.next_checkin = self.clock.ticks_add(self.clock.ticks_ms(), wait)
            await self.clock.sleep_ms(wait)
        while True:
            self.radio.want("checkin", gnss=self.radio.last.get("fix") is None)
            if await self._synced(_CHECKIN_TIMEOUT_MS):
                await self.clock.sleep_ms(_CHECKIN_SETTLE_MS)
            else:
                print("checkin: no cloud this time")
            self.radio.done("checkin")
            every = self.cfg.get("heartbeat_s", 3600) * 1000
            self.next_checkin = self.clock.ticks_add(self.clock.ticks_ms(), every)
            await self.clock.sleep_ms(every)
            c = self.session.client
            if c is not None and c.connected:
                # Still online (an alarm, a call): no new connection will say hello.
                self.outbox.put("status", self.status_msg())

    async def _release_when_sent(self, reason):
        await self.clock.sleep_ms(1000)
        await self._synced(_CHECKIN_TIMEOUT_MS)
        self.radio.done(reason)

    async def _synced(self, timeout_ms):
        # True once the session is (or has been since) connected with the outbox
        # drained; False after timeout_ms. Polled: an Event under wait_for_ms
        # holds a timer task and its frames for the whole wait.
        s = self.session
        syncs = s.syncs
        end = self.clock.ticks_add(self.clock.ticks_ms(), timeout_ms)
        while not s.synced and s.syncs == syncs:
            if self.clock.ticks_diff(end, self.clock.ticks_ms()) <= 0:
                return False
            await self.clock.sleep_ms(_SYNC_POLL_MS)
        return True

    async def periodic(self):
        # The periodic checks share one task (a sleeping task is a frame and a
        # Task in the heap for good): every tick the accelerometer, every second
        # tracking and an alarm's location reports, every 5 s the pulse, every 20 s the reminders
        # (app/reminders.py), every minute
        # the battery, that one at once too. A check that fails is logged and
        # the task goes on.
        n = 0
        while True:
            try:
                if n:
                    self._fall_check()
                    if n % (1000 // _TICK_MS) == 0:
                        self._track_check()
                        if self._alarm_track is not None:
                            self._alarm_track_check()
                    if n % (_VITALS_CHECK_MS // _TICK_MS) == 0:
                        self._vitals_check()
                    if n % (_WELFARE_CHECK_MS // _TICK_MS) == 0:
                        self._welfare_check()
                    if n % (_REMINDER_CHECK_MS // _TICK_MS) == 0:
                        self._reminder_check()
                if n % (_BATTERY_CHECK_MS // _TICK_MS) == 0 and self._battery_check():
                    await self.shutdown("battery empty")
            except Exception as e:
                print("watch: check failed", repr(e))
            self.ticked = self.clock.ticks_ms()
            await self.clock.sleep_ms(_TICK_MS)
            n += 1

    def _battery_check(self):
        # True when the cell is empty: the watch must shut down.
        b = self.board.battery()
        low = self.cfg.get("low_battery_pct", 15)
        flagged = flash.exists(self._low_path)
        if b.get("pct", 100) <= low and not flagged:
            # Once per discharge: the flag survives reboots, a charge clears it.
            flash.write_atomic(self._low_path, b"1")
            s = self.snapshot()
            self.outbox.put("alert", messages.alert(self.outbox.new_mid(), s["ts"], "low_battery", "battery",
                                                    loc=s["loc"], cell=s["cell"], batt=b, net=s["net"]))
            self.ui.show("Battery low - please charge")
            self.radio.want("battery")
            asyncio.create_task(self._release_when_sent("battery"))
        if b.get("pct", 100) <= _EMPTY_PCT:
            self.ui.show("Battery empty")
            return True
        if b.get("pct", 100) >= low + 10 and flagged:
            import os
            os.remove(self._low_path)
        return False

    def _welfare_check(self):
        # The wearer's movement, stamped (the accelerometer's activity interrupt);
        # app/welfare.py only when it has work: a check-in set or being asked, a
        # look for skin due, the wearer moving after long stillness.
        now = self.clock.ticks_ms()
        wf = self.welfare
        still = 0
        if self.board.moved():
            still = self.clock.ticks_diff(now, wf[0])
            wf[0] = now
        if (still >= _STILL_REPORT_MS or wf[3] is not None or self.cfg.get("checkin_at")
                or self.clock.ticks_diff(now, wf[2]) >= self.device.get("worn_check_s", _WORN_CHECK_S) * 1000):
            from app import welfare
            welfare.check(self, now, still)

    def _reminder_check(self):
        # app/reminders.py, loaded only by a watch that has reminders or a dose pending.
        if self.cfg.get("reminders") or self._dose is not None:
            from app.reminders import check
            check(self)

    def _track_check(self):
        # A report every track_s while tracking; the first at once.
        if self.track_until is None:
            return
        now = self.clock.ticks_ms()
        if self.clock.ticks_diff(self.track_until, now) <= 0:
            self.track_until = None
            self._track_next = None
            self.radio.done("track")
        elif self._track_next is None or self.clock.ticks_diff(now, self._track_next) >= 0:
            self._track_next = self.clock.ticks_add(now, self.track_s * 1000)
            self.put_loc("periodic", self.alarm.current_ref())
