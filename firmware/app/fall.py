# Fall detection on wrist accelerometer samples, triggered by the impact:
#   1. impact: |a| above impact_mg, with a loss of support (|a| below ff_mg for at
#      least ff_ms) ending at most descent_ms before it. Recorded wrist falls
#      (WEDA-FALL, docs/figures.md) show why the descent is not the trigger: the
#      arms' protective swing keeps the wrist's free fall short and shallow.
#   2. landing: over the impact_ms after the impact, the energy of the movement
#      (the sum of | |a| - 1 g |, in mg.s) must reach energy_mgs. A body coming down
#      on the floor strikes more than once (hand, hip, shoulder) and rolls; a
#      forearm stopped by a table strikes once and rests.
#   3. aftermath, judged from settle_ms to post_ms after the impact: stillness
#      (little spread of |a|) or a change of orientation held (the gravity vector
#      turned by more than turn_deg from the wrist's resting direction before the
#      event).
# With a barometer (a watch that carries one: board.baro_read()), the height the
# wrist lost decides too, because it is what tells a fall from sitting down: the
# wrist ends 0.3-0.9 m lower on the floor, under 0.4 m lower on a chair or a sofa.
#   4. a candidate is a fall only if the wrist, over the aftermath, is at least
#      drop_cm below where it was 0.5-1.5 s before the impact, and stays at one
#      height (the two halves of the aftermath within level_cm): a bus going
#      downhill, a lift or a staircase keeps changing;
#   5. a second trigger needs no impact: the wrist sinking slump_cm below the slow
#      average for a second (a faint, a slide down a wall) starts a candidate
#      judged on its aftermath: the forearm turned by slump_turn_deg from its
#      direction before the sink, no steps, at one height.
# Every stage a candidate reaches is reported to `log`, so the thresholds can be
# tuned from what real wearers do. Streaming, integer maths: it runs per sample
# at 50 Hz and keeps a dozen numbers, no sample buffer.
import math

DEFAULTS = {"ff_mg": 750, "ff_ms": 40, "descent_ms": 1000, "impact_mg": 3000, "impact_ms": 1000,
            "energy_mgs": 160, "post_ms": 3000, "settle_ms": 1000, "still_mg": 100, "turn_deg": 45,
            "drop_cm": 40, "slump_cm": 30, "level_cm": 25, "slump_turn_deg": 30, "slump_spread_mg": 900,
            "baro_aftermath": 1}
# With a barometer, the height settles what the accelerometer alone had to guess
# from the landing, so the impact and landing thresholds can be lower (more
# falls found). Picked on the tuning traces only (bench/fall_detector_bench.py).
BARO_DEFAULTS = {"impact_mg": 2500, "energy_mgs": 80}
FAST_S10 = 5     # the pressure's fast average: tenths of a second
SLOW_S10 = 50    # its slow average, the "before" a drop is measured from
HS_CM_DPA = 843400  # cm per (dPa / dPa): the air's scale height, 8.434 km at 15 degC
HS_LAPSE_CM = 160464  # its fall per unit of (1 - p / p0) in the standard atmosphere: 0.19026 Hs
SEA_DPA = 1013250     # p0, the standard sea-level pressure, Pa x 10
P_MIN_DPA, P_MAX_DPA = 300000, 1250000  # the BMP390's range, 300-1250 hPa, in Pa x 10
REST_MG = 150    # |a| within 1 g +- this: the wrist is at rest and shows gravity's direction
REST_SHIFT = 4   # the resting direction follows rest samples with a weight of 1/16
REST_AGE_MS = 500
NEVER_MS = 1 << 20  # "no loss of support seen lately": kept a small int (a big one costs heap)


class FallDetector:
    def __init__(self, hz=50, thresholds=None, log=print, baro_hz=None):
        self.t = dict(DEFAULTS)
        if baro_hz:
            self.t.update(BARO_DEFAULTS)
        if thresholds:
            self.t.update(thresholds)
        self.baro = bool(baro_hz)
        if self.baro:
            self._kf = max(1, int(FAST_S10 * baro_hz) // 10)
            self._ks = max(2, int(SLOW_S10 * baro_hz) // 10)
            self._kh = max(1, int(5 * baro_hz) // 10)
            self._bh10 = int(baro_hz * 10)
        self._pf = self._ps = None  # the pressure's fast and slow averages, dPa x 16
        # The pressure's means over half-second blocks (dPa x 16): the block under way
        # (sum, count), then the last three finished: 0-0.5, 0.5-1 and 1-1.5 s ago.
        self._pbs = self._pk = 0
        self._pmid = self._pold = self._pold2 = None
        self._sunk = 0        # pressures in a row that showed the wrist sunk
        self.bad_pressures = 0  # pressures out of the part's range, dropped
        self._slow = False    # the candidate came from a drop, not an impact
        self.hz = hz
        self.dt = 1000 // hz
        self.log = log
        self.candidates = 0
        self._rest = None     # gravity's direction at rest before the event, mg (x16)
        self._rest_mid = self._rest_old = None
        self._rest_slow = None  # the same over about 5 s (x256): before a slow sink
        self._age = 0
        self._low = 0         # ms of the current run below ff_mg
        self._since_low = NEVER_MS  # ms since a run of at least ff_ms below ff_mg ended
        self._reset()

    def _reset(self):
        self.stage = "idle"
        self._since = 0       # ms since the impact
        self._energy = 0      # sum of | |a| - 1 g | over the landing, mg x samples
        self._upright = None
        self._lo = self._hi = 0
        self._sum = [0, 0, 0]
        self._n = 0
        self._pref = None     # the height before the candidate, as a pressure (dPa x 16)
        self._psum = self._pn = 0   # the aftermath's pressures: first half
        self._psum2 = self._pn2 = 0  # second half
        self._slow = False

    def feed(self, samples, pressures=None):
        # Returns True when the samples complete a fall. `pressures` (dPa, oldest
        # first) cover the same span as `samples`: each is taken in at its place.
        fell = False
        n = len(samples)
        m = len(pressures) if pressures else 0
        j = 0
        if m and self.baro:
            # More pressures than the samples' span holds (the barometer's FIFO keeps
            # seconds, the accelerometer's 0.64 s: after a wake from deep sleep): the
            # older ones are the "before", taken in first.
            j = max(0, m - n * self._bh10 // (self.hz * 10) - 1)
            for k in range(j):
                self._pressure(pressures[k])
            m -= j
            pressures = pressures[j:]
            j = 0
        for i in range(n):
            if self._step(samples[i]):
                fell = True
            while j < m and (j + 1) * n <= (i + 1) * m:
                if self._pressure(pressures[j]):
                    fell = True
                j += 1
        while j < m:
            if self._pressure(pressures[j]):
                fell = True
            j += 1
        return fell

    def _pressure(self, p):
        # One pressure: the averages, and the slump trigger. A verdict comes only
        # from _step (the accelerometer's clock), so this never returns True.
        if not self.baro:
            return False
        if not P_MIN_DPA <= p <= P_MAX_DPA:
            # Outside what the part can measure: a bus glitch or a broken part. Dropped
            # and counted, never a reason to miss a fall: without pressures the
            # accelerometer's verdict stands alone.
            self.bad_pressures += 1
            return False
        p16 = p << 4
        if self._pf is None:
            self._pf = self._ps = p16
        self._pf += (p16 - self._pf) // self._kf
        if self.stage == "idle":
            self._ps += (p16 - self._ps) // self._ks
            self._pbs += p16
            self._pk += 1
            if self._pk >= self._kh:  # every half second, a block's mean set aside
                self._pold2, self._pold, self._pmid = self._pold, self._pmid, self._pbs // self._pk
                self._pbs = self._pk = 0
            sunk = _cm(self._pf - self._ps, self._ps)
            # held for a second: a fall's impact, a fraction of a second after its
            # drop, makes it an impact candidate first
            self._sunk = self._sunk + 1 if sunk >= self.t["slump_cm"] else 0
            if self._sunk >= self._kh * 2:
                self.candidates += 1
                # the sink began seconds ago: the wrist's direction from before it
                upright = self._rest_slow or self._rest_old or self._rest_mid or self._rest
                self._reset()
                self._upright = list(upright) if upright else None
                self._pref = self._ps
                self._slow = True
                self.stage = "aftermath"
                self.log("fall: candidate %d sank %d cm" % (self.candidates, sunk))
        elif self._since > self.t["settle_ms"] and self.stage == "aftermath":
            if self._since * 2 < self.t["settle_ms"] + self.t["post_ms"]:
                self._psum += p
                self._pn += 1
            else:
                self._psum2 += p
                self._pn2 += 1
        return False

    def _step(self, s):
        x, y, z = s[0], s[1], s[2]
        mag = int(math.sqrt(x * x + y * y + z * z))
        t = self.t
        if self.stage == "idle":
            return self._idle(s, mag, t)
        self._since += self.dt
        if self.stage == "landing":
            self._energy += abs(mag - 1000)
            if self._since < t["impact_ms"]:
                return False
            energy = self._energy * self.dt // 1000
            if energy < t["energy_mgs"]:
                self.log("fall: candidate %d rejected: landing %d mg.s" % (self.candidates, energy))
                self._reset()
                return False
            self.stage = "aftermath"
            self.log("fall: candidate %d landing %d mg.s" % (self.candidates, energy))
            return False
        if self._since > t["settle_ms"]:
            if self._n == 0:
                self._lo = self._hi = mag
            self._lo, self._hi = min(self._lo, mag), max(self._hi, mag)
            self._sum[0] += x
            self._sum[1] += y
            self._sum[2] += z
            self._n += 1
        if self._since < t["post_ms"]:
            return False
        spread = (self._hi - self._lo) if self._n else 9999
        turn = _angle(self._upright, self._sum) if self._n and self._upright else 0
        still = spread < t["still_mg"] * 2
        turned = turn > t["turn_deg"]
        # A drop with no impact is a fall only if the forearm lies another way than
        # before (standing at the foot of a stair or in a lift, it does not) and the
        # wearer is not walking (steps strike the wrist with a spread near 1 g;
        # someone trying to get up off the floor moves it less).
        if self._slow:
            verdict = turn > t["slump_turn_deg"] and spread < t["slump_spread_mg"]
        else:
            verdict = still or turned
        if self.baro and not self._slow and not t["baro_aftermath"]:
            verdict = True  # the height alone judges the aftermath: a faller may move
        drop = ""
        if self.baro and self._pref is not None and self._pn and self._pn2:
            # pressure up = the wrist lower
            first, second = (self._psum << 4) // self._pn, (self._psum2 << 4) // self._pn2
            lost = _cm((first + second) // 2 - self._pref, self._pref)
            drift = abs(_cm(second - first, self._pref))
            verdict = (verdict and lost >= (t["slump_cm"] if self._slow else t["drop_cm"])
                       and drift <= t["level_cm"])
            drop = " drop %d cm drift %d cm" % (lost, drift)
        self.log("fall: candidate %d aftermath spread %d mg turn %d deg%s -> %s" %
                 (self.candidates, spread, turn, drop, "FALL" if verdict else "rejected"))
        if self._pf is not None:
            self._ps = self._pf  # a height judged is the new "before": it must not start again
        self._sunk = 0
        self._reset()
        self._rest = self._rest_mid = self._rest_old = self._rest_slow = None  # judged afresh after an event
        self._since_low = NEVER_MS
        return verdict

    def _idle(self, s, mag, t):
        if mag < t["ff_mg"]:
            self._low += self.dt
        else:
            if self._low >= t["ff_ms"]:
                self._since_low = 0
            self._low = 0
            if self._since_low < NEVER_MS:
                self._since_low += self.dt
        if abs(mag - 1000) < REST_MG:
            r = self._rest
            if r is None:
                self._rest = [s[0] << REST_SHIFT, s[1] << REST_SHIFT, s[2] << REST_SHIFT]
            else:
                for i in range(3):
                    r[i] += s[i] - (r[i] >> REST_SHIFT)
            if self.baro:
                r = self._rest_slow
                if r is None:
                    self._rest_slow = [s[0] << 8, s[1] << 8, s[2] << 8]
                else:
                    for i in range(3):
                        r[i] += s[i] - (r[i] >> 8)
        # Every REST_AGE_MS the resting direction is set aside: the one the impact is
        # compared with is that of 0.5-1 s earlier, before the wrist began to turn.
        self._age += self.dt
        if self._age >= REST_AGE_MS:
            self._age = 0
            self._rest_old = self._rest_mid
            self._rest_mid = list(self._rest) if self._rest else None
        if mag > t["impact_mg"] and self._since_low <= t["descent_ms"]:
            self.candidates += 1
            upright = self._rest_old or self._rest_mid or self._rest
            self._reset()
            self._upright = list(upright) if upright else None
            # before the fall: the second of pressures that ended half a second before
            # the impact (a single 6.25 Hz frame is 0.7 Pa noisy: 6 cm)
            self._pref = (self._pold + self._pold2) // 2 if self._pold2 else self._ps
            self.stage = "landing"
            self._energy = mag - 1000
            self.log("fall: candidate %d impact %d mg" % (self.candidates, mag))
        return False


def _cm(dp16, p16):
    # The height (cm) that a pressure difference dp16 (dPa x 16) is at pressure p16:
    # dh = Hs dp / p, Hs = R T / (M g) the air's scale height. T as the standard
    # atmosphere (ISO 2533) has it at that pressure: T/T0 = (p/p0)^0.19026, here to
    # first order (within 0.3 % down to 700 hPa); 1500 m up, Hs is 3.4 % below sea
    # level's. Clamped (+-12 m, 350 hPa), so every product stays a small int.
    p = p16 >> 4
    hs = HS_CM_DPA - HS_LAPSE_CM * min(6600, (SEA_DPA - p) // 100) // (SEA_DPA // 100)
    dp16 = max(-16000, min(16000, dp16))
    return dp16 * (hs >> 4) // p


def _angle(a, b):
    dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    na = math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])
    nb = math.sqrt(b[0] * b[0] + b[1] * b[1] + b[2] * b[2])
    if na == 0 or nb == 0:
        return 0
    c = max(-1.0, min(1.0, dot / (na * nb)))
    return int(math.degrees(math.acos(c)))
