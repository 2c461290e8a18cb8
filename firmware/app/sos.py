# Raising an alarm: the red button, the fall detector and its countdown, the
# alarm's location reports and the emergency call when no network will do.
# The state machine itself is app/alarm.py; this is what the watch does around
# it. A mixin of app.watch.Watch: its state is the watch's fall, countdown,
# _alarm_track and _emergency_dialled.
import asyncio
from app import Flag


class Emergency:
    def on_sos(self):
        if self.countdown is not None:
            self.countdown.set()  # a press during a fall countdown: help is wanted now
        asyncio.create_task(self.raise_alert("sos", "button"))

    async def raise_alert(self, kind, trigger):
        self.ui.vibrate(300)  # before anything slow: the wearer must feel it worked
        first = self.alarm.state == "idle"
        hr = self._hr_recent() if first else None
        # The alert never waits for the pulse (seconds of PPG): it is on flash and
        # on its way at once, and the reading joins it if it comes before the
        # first send (the modem boots for 11 s; a fall countdown measured already).
        mid = self.alarm.raise_alert(kind, trigger, {"hr": hr} if hr else None, buzz=False)
        if first and hr is None:
            self.want_heart_rate(mid)

    def _alarm_changed(self, state):
        if state == "idle":
            self.radio.alarm = False
            self.radio.done("alarm")
            self._emergency_dialled = False
            self._fallback_done = False
        else:
            self.radio.alarm = True
            if "alarm" not in self.radio.needs:
                self.radio.want("alarm", gnss=True)
                now = self.clock.ticks_ms()
                self._alarm_track = [now, False, now]

    def _fallback_check(self):
        # Every second of an alarm: one the cloud has not received after
        # sms_fallback_s on a network that registers (voice and SMS work, data or
        # the cloud does not) goes by SMS to the centre, with a call, once.
        a = self.alarm
        if (self._fallback_done or a.state != "calling" or a.started is None
                or not self.radio.up.is_set() or not self.cfg.get("callcenter_number")
                or self.clock.ticks_diff(self.clock.ticks_ms(), a.started)
                < self.cfg.get("sms_fallback_s", 90) * 1000):
            return
        self._fallback_done = True
        from app.fallback import alarm_by_sms
        asyncio.create_task(alarm_by_sms(self, self.cfg["callcenter_number"]))

    def _alarm_track_check(self):
        # Every second of an alarm (periodic): the alert went without waiting for
        # GNSS; the first fresh fix follows as a `loc` with the alert's mid, then
        # a report every track period.
        if not self.alarm.active():
            self._alarm_track = None
            return
        self._fallback_check()
        since, got, last = self._alarm_track
        ref = self.alarm.current_ref()
        t = self.radio.fix_ticks()
        now = self.clock.ticks_ms()
        if not got and t is not None and self.clock.ticks_diff(t, since) > 0:
            self._alarm_track = [since, True, now]
            self.put_loc("fix", ref)
        elif self.clock.ticks_diff(now, last) >= self.cfg.get("track_s", 30) * 1000:
            self._alarm_track[2] = now
            self.put_loc("alarm", ref)

    def _no_network(self):
        if self.alarm.active() and not self._emergency_dialled:
            # Last resort: no profile registers, but an emergency call needs none.
            self._emergency_dialled = True
            number = self.cfg.get("emergency_number") or "112"
            print("alarm: no network, dialling", number)
            self.ui.show("No network - calling %s" % number, pin=True)
            asyncio.create_task(self._calls().dial(number, need_network=False))

    def _fall_check(self):
        samples = self.board.accel_read()
        pressures = self.board.baro_read()  # None: no barometer on this board
        if not samples or not self.cfg.get("fall_detection", True):
            return
        if self.fall is None:
            from app.fall import FallDetector  # with the first motion: not before
            self.fall = FallDetector(self.board.accel_hz, self.cfg.get("fall"),
                                     baro_hz=self.board.baro_hz if pressures is not None else None)
        if self.fall.feed(samples, pressures) and self.countdown is None and not self.alarm.active():
            asyncio.create_task(self._fall_countdown())

    async def _fall_countdown(self):
        cancel = Flag()
        self.countdown = cancel
        secs = self.cfg.get("fall_countdown_s", 15)
        print("fall: detected, countdown", secs, "s")
        self.radio.want("fall")  # the modem boots meanwhile: the alert leaves sooner
        self.want_heart_rate()   # and the pulse is read: the alert carries it
        for left in range(secs, 0, -1):
            self.ui.show("Fall detected - press to cancel %d" % left, pin=True)
            self.ui.vibrate(300)
            try:
                await self.clock.wait_for_ms(cancel.wait(), 1000)
                break
            except asyncio.TimeoutError:
                pass
        pressed = cancel.is_set()
        self.countdown = None
        self.radio.done("fall")
        if not pressed:
            await self.raise_alert("fall", "fall_detector")
        elif not self.alarm.active():
            self.ui.unpin()
