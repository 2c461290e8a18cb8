# The wearer's pulse: one reading at a time (seconds of PPG), kept fresh while
# the radio is on, and added to an alert that left before it came. A mixin of
# app.watch.Watch: the state is the watch's _hr, _hr_busy, _hr_tried, _hr_for.
import asyncio
from micropython import const

_HR_FRESH_MS = const(60000)  # a heart rate this recent goes with an alert at once
_VITALS_CHECK_MS = const(5000)  # how often app/routine.py calls _vitals_check


class Vitals:
    def _hr_recent(self):
        if self._hr and self.clock.ticks_diff(self.clock.ticks_ms(), self._hr[1]) < _HR_FRESH_MS:
            return self._hr[0]
        return None

    def want_heart_rate(self, mid=None):
        # One reading at a time; mid: an alert to complete with it.
        if not hasattr(self.board, "heart_rate"):
            return
        if mid:
            self._hr_for.append(mid)
        if not self._hr_busy:
            self._hr_busy = True
            self._hr_tried = self.clock.ticks_ms()
            asyncio.create_task(self._heart_rate())

    async def _heart_rate(self):
        hr = None
        try:
            hr = await self.board.heart_rate()
        except Exception as e:
            print("vitals: heart rate failed", repr(e))
        finally:
            self._hr_busy = False
        print("vitals: heart rate", hr)
        if hr:
            self._hr = (hr, self.clock.ticks_ms())
        mids, self._hr_for = self._hr_for, []
        for mid in mids:
            if hr and self.outbox.add_vitals(mid, {"hr": hr}):
                print("vitals: added to alert", mid)
            elif hr:  # the alert left before the reading: it follows in a position report
                print("vitals: alert", mid, "already sent: in a position report")
                self.put_loc("alarm", ref=mid)

    def _vitals_check(self):
        # While the radio is on (a check-in, an alarm, a call) a heart rate is kept
        # fresh, so an SOS pressed then leaves at once with a reading of the last
        # minute. Idle, the sensor sleeps: its LEDs are not free.
        now = self.clock.ticks_ms()
        if self.radio.powered and not self._hr_busy and (
                self._hr_tried is None
                or self.clock.ticks_diff(now, self._hr_tried) >= _HR_FRESH_MS - 2 * _VITALS_CHECK_MS):
            self.want_heart_rate()
