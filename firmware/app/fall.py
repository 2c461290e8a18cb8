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
# Every stage a candidate reaches is reported to `log`, so the thresholds can be
# tuned from what real wearers do. Streaming, integer maths: it runs per sample
# at 50 Hz and keeps a dozen numbers, no sample buffer.
import math

DEFAULTS = {"ff_mg": 750, "ff_ms": 40, "descent_ms": 1000, "impact_mg": 3000, "impact_ms": 1000,
            "energy_mgs": 160, "post_ms": 3000, "settle_ms": 1000, "still_mg": 100, "turn_deg": 45}
REST_MG = 150    # |a| within 1 g +- this: the wrist is at rest and shows gravity's direction
REST_SHIFT = 4   # the resting direction follows rest samples with a weight of 1/16
REST_AGE_MS = 500
NEVER_MS = 1 << 20  # "no loss of support seen lately": kept a small int (a big one costs heap)


class FallDetector:
    def __init__(self, hz=50, thresholds=None, log=print):
        self.t = dict(DEFAULTS)
        if thresholds:
            self.t.update(thresholds)
        self.hz = hz
        self.dt = 1000 // hz
        self.log = log
        self.candidates = 0
        self._rest = None     # gravity's direction at rest before the event, mg (x16)
        self._rest_mid = self._rest_old = None
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

    def feed(self, samples):
        # Returns True when the samples complete a fall.
        fell = False
        for s in samples:
            if self._step(s):
                fell = True
        return fell

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
        verdict = still or turned
        self.log("fall: candidate %d aftermath spread %d mg turn %d deg -> %s" %
                 (self.candidates, spread, turn, "FALL" if verdict else "rejected"))
        self._reset()
        self._rest = self._rest_mid = self._rest_old = None  # judged afresh after an event
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
            self.stage = "landing"
            self._energy = mag - 1000
            self.log("fall: candidate %d impact %d mg" % (self.candidates, mag))
        return False


def _angle(a, b):
    dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    na = math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])
    nb = math.sqrt(b[0] * b[0] + b[1] * b[1] + b[2] * b[2])
    if na == 0 or nb == 0:
        return 0
    c = max(-1.0, min(1.0, dot / (na * nb)))
    return int(math.degrees(math.acos(c)))
