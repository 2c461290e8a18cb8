# Fall detection on wrist accelerometer samples, in three stages:
#   1. free fall: |a| stays below ff_mg for at least ff_ms;
#   2. impact: |a| above impact_mg within impact_window_ms after the free fall;
#   3. aftermath, judged over the post_ms after the impact: stillness (little
#      variation of |a|) or a change of orientation (the gravity vector turned
#      by more than turn_deg from before the fall).
# Every stage a candidate reaches is reported to `log`, so the thresholds can be
# tuned from what real wearers do. Integer maths only: it runs per sample.
import math

DEFAULTS = {"ff_mg": 600, "ff_ms": 80, "impact_mg": 2000, "impact_window_ms": 600,
            "post_ms": 2500, "settle_ms": 800, "still_mg": 150, "turn_deg": 45}
PRE_SAMPLES = 25  # the half second before the free fall gives "upright"


class FallDetector:
    def __init__(self, hz=50, thresholds=None, log=print):
        self.t = dict(DEFAULTS)
        if thresholds:
            self.t.update(thresholds)
        self.hz = hz
        self.dt = 1000 // hz
        self.log = log
        self.candidates = 0
        self._pre = []        # recent samples while nothing is happening
        self._reset()

    def _reset(self):
        self.stage = "idle"
        self._ff = 0          # ms of free fall so far
        self._since = 0       # ms since the stage began
        self._upright = None
        self._post = []

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
            if mag < t["ff_mg"]:
                self._ff += self.dt
                if self._ff >= t["ff_ms"]:
                    self.stage, self._since = "free_fall", 0
                    self._upright = _mean(self._pre[:PRE_SAMPLES // 2] or [s])
                    self.candidates += 1
                    self.log("fall: candidate %d free fall" % self.candidates)
            else:
                self._ff = 0
                self._pre.append(s)
                if len(self._pre) > PRE_SAMPLES:
                    self._pre.pop(0)
            return False
        self._since += self.dt
        if self.stage == "free_fall":
            if mag > t["impact_mg"]:
                self.stage, self._since = "impact", 0
                self.log("fall: candidate %d impact %d mg" % (self.candidates, mag))
            elif self._since > t["impact_window_ms"]:
                self.log("fall: candidate %d rejected: no impact" % self.candidates)
                self._reset()
            return False
        # after the impact
        if self._since > t["settle_ms"]:
            self._post.append(s)
        if self._since < t["post_ms"]:
            return False
        mags = [int(math.sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2])) for p in self._post]
        spread = (max(mags) - min(mags)) if mags else 9999
        turn = _angle(self._upright, _mean(self._post)) if self._post else 0
        still = spread < t["still_mg"] * 2
        turned = turn > t["turn_deg"]
        verdict = still or turned
        self.log("fall: candidate %d aftermath spread %d mg turn %d deg -> %s" %
                 (self.candidates, spread, turn, "FALL" if verdict else "rejected"))
        self._reset()
        self._pre = []
        return verdict


def _mean(samples):
    n = len(samples)
    return [sum(s[i] for s in samples) // n for i in range(3)]


def _angle(a, b):
    dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    na = math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])
    nb = math.sqrt(b[0] * b[0] + b[1] * b[1] + b[2] * b[2])
    if na == 0 or nb == 0:
        return 0
    c = max(-1.0, min(1.0, dot / (na * nb)))
    return int(math.degrees(math.acos(c)))
