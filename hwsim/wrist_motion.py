"""Wrist motions driven by published fall and daily-activity kinematics, read by the LIS3DH.

Unlike hwsim/traces.py (shapes drawn after the detector's own model: free fall,
impact, stillness), these traces come from a small kinematic model of the wrist:
the world-frame specific force (what an accelerometer measures: acceleration
minus gravity), a sensor orientation that turns, and impacts as half-sine pulses
of a given peak and duration, averaged over each 20 ms sample as the part does.
hwsim/accel_readout.py then applies the part's noise, resolution and range.

Where each figure comes from (docs/figures.md has the full list):
- [R05] Robinovitch et al., J Gerontol A 60(12):1553-7 (2005): in falls from
  standing, wrist contact at 680 +- 116 ms and pelvis at 715 +- 160 ms after the
  fall begins (their summary of Hsiao & Robinovitch 1998).
- [H98] Hsiao & Robinovitch, J Biomech 31:1-9 (1998): the wrist strikes about
  38 ms before the pelvis; protective arm movements in every fall.
- [F07] Feldman & Robinovitch, J Biomech 40:2612-8 (2007): sideways falls, the
  hand strikes in 98 % of falls, 50 ms (SD 40) before the pelvis.
- [B12] Bagala et al., PLoS ONE 7:e37062 (2012): 13 published detectors on 29
  real-world falls: sensitivity 57 +- 27 %, and 3 to 85 false alarms in a day of
  monitoring; real falls are slower and less clear-cut than simulated ones.
- [P20] Palmerini et al., Sensors 20:6479 (2020), FARSEEING real-world falls.
- [C17] Casilari et al., Sensors 17:1513 (2017): public fall datasets (SisFall,
  MobiFall, UMAFall...) saturate at a +-2/4 g range: peaks at impact exceed it.
- [S17] Sucerquia et al., Sensors 17:198 (2017), SisFall: errors concentrate on
  a few ADLs (sitting down quickly, jumping-like moves).
Figures not found in a source are marked ASSUMPTION here and in docs/figures.md.

Tuning and test sets are kept apart: a trace's every parameter is drawn from a
random source seeded with its set's name ("tuning" or "test"), its label and its
index, so the two sets never share a draw.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable

from hwsim.accel_readout import FIRMWARE_CONFIG, Readout
from hwsim.baro_readout import FIRMWARE_CONFIG as BARO_CONFIG
from hwsim.baro_readout import BaroReadout

HZ = FIRMWARE_CONFIG.odr_hz
G = 1000.0  # mg
# "holdout": drawn fresh for the barometer's figure. Its stages were designed with the
# test set's per-label counts on screen, so the test set was no longer unseen for them.
SETS = ("tuning", "test", "holdout")
FALLS = ("fall_forward", "fall_backward", "fall_lateral", "fall_from_chair", "fall_slow_slump")
ACTIVITIES = ("arm_drop_table", "sofa_flop", "sitting_hard", "sitting_down", "clapping", "brushing_teeth",
              "car_door", "bus_ride", "walking", "stairs")
# Activities that last: one trace is one minute of them (a wearer-day counts minutes).
CONTINUOUS = ("brushing_teeth", "bus_ride", "walking")

Vec = tuple[float, float, float]


class Motion:
    """Samples of world specific force (mg, z up) and sensor orientation, plus impacts."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.force: list[Vec] = []
        self.orient: list[tuple[float, float]] = []  # (pitch, roll) in radians
        self.pulses: list[tuple[float, float, float, Vec]] = []  # (t0 s, duration s, peak mg, unit dir)
        self._jit = [0.0, 0.0, 0.0]
        # The wrist's height above the floor (m), per sample, for a barometer
        # (hwsim/baro_readout.py). Its draws come from a source of their own, derived
        # from the motion's without consuming it: the accelerometer traces are the
        # same with or without a barometer.
        self.hrng = random.Random(hash(rng.getstate()[1]))  # a tuple of ints: the same hash in every run
        self.body = body_height(self.hrng)
        self.h = standing_wrist(self.body)
        self.height: list[float] = []
        self.lift_m = 0.0  # a periodic movement's vertical swing of the wrist
        self.place = "indoors"  # what moves the air around the barometer: indoors, outdoors, vehicle

    @property
    def t(self) -> float:
        return len(self.force) / HZ

    def _push(self, f: Vec, pitch: float, roll: float, jitter_mg: float) -> None:
        # body unsteadiness: AR(1) noise per axis, correlated over ~0.2 s (ASSUMPTION: 5-40 mg)
        j = self._jit
        for i in range(3):
            j[i] = 0.9 * j[i] + math.sqrt(1 - 0.81) * self.rng.gauss(0.0, jitter_mg)
        self.force.append((f[0] + j[0], f[1] + j[1], f[2] + j[2]))
        self.orient.append((pitch, roll))
        self.height.append(self.h)

    def still(self, seconds: float, pitch: float, roll: float = 0.0, jitter_mg: float = 10.0) -> None:
        for _ in range(int(seconds * HZ)):
            self._push((0.0, 0.0, G), pitch, roll, jitter_mg)

    def descend(self, seconds: float, min_mg: float, pitch: tuple[float, float], roll: tuple[float, float],
                jitter_mg: float = 40.0, to_h: float | None = None) -> None:
        """Losing support: the specific force falls from 1 g towards ``min_mg`` as the
        body (or limb) accelerates down, deepest just before the contact. The wrist
        goes down to ``to_h`` (m), gathering speed: most of the height is lost last."""
        n = max(1, int(seconds * HZ))
        h0 = self.h
        h1 = h0 if to_h is None else to_h
        for i in range(n):
            u = (i + 1) / n
            depth = u * u * (3 - 2 * u)  # smoothstep: slow loss of balance, then the drop
            mag = G - (G - min_mg) * depth
            p = pitch[0] + (pitch[1] - pitch[0]) * u
            r = roll[0] + (roll[1] - roll[0]) * u
            self.h = h0 + (h1 - h0) * u * u
            self._push((0.0, 0.0, mag), p, r, jitter_mg)

    def impact(self, peak_mg: float, duration_s: float, direction: Vec = (0.0, 0.0, 1.0),
               at: float | None = None) -> None:
        self.pulses.append((self.t if at is None else at, duration_s, peak_mg, direction))

    def wave(self, seconds: float, hz: float, amp_mg: float, axis: Vec, pitch: float, roll: float = 0.0,
             swing_rad: float = 0.0, jitter_mg: float = 30.0, base_mg: Vec = (0.0, 0.0, G)) -> None:
        """A periodic movement: force along ``axis`` and an orientation swing."""
        phase = self.rng.uniform(0, 2 * math.pi)
        h0 = self.h
        for i in range(int(seconds * HZ)):
            s = math.sin(2 * math.pi * hz * i / HZ + phase)
            sw = math.sin(math.pi * hz * i / HZ + phase)  # the arm swings at half the step rate
            self.h = h0 + self.lift_m * sw
            self._push((base_mg[0] + amp_mg * s * axis[0], base_mg[1] + amp_mg * s * axis[1],
                        base_mg[2] + amp_mg * s * axis[2]), pitch + swing_rad * sw, roll, jitter_mg)
        self.h = h0

    def read(self, readout: Readout = FIRMWARE_CONFIG) -> list[list[int]]:
        """The FIFO samples: each sample averages its 20 ms window (impacts included),
        turned into the sensor's frame, then noise, resolution and range."""
        dt = 1.0 / HZ
        sub = 20
        out = []
        for n, (f, (pitch, roll)) in enumerate(zip(self.force, self.orient)):
            fx, fy, fz = f
            t0 = n * dt
            for (p0, dur, peak, d) in self.pulses:
                if p0 + dur <= t0 or p0 >= t0 + dt:
                    continue
                acc = 0.0
                for k in range(sub):
                    t = t0 + (k + 0.5) * dt / sub
                    if p0 <= t < p0 + dur:
                        acc += math.sin(math.pi * (t - p0) / dur)
                a = peak * acc / sub
                fx, fy, fz = fx + a * d[0], fy + a * d[1], fz + a * d[2]
            out.append(readout.sample(_to_sensor((fx, fy, fz), pitch, roll), self.rng))
        return out


    def read_pressure(self, readout: BaroReadout = BARO_CONFIG) -> list[int]:
        """The barometer's pressures (dPa, at ``readout.odr_hz``) over the same motion."""
        return readout.read(self.height, HZ, self.hrng, self.place)


def _to_sensor(f: Vec, pitch: float, roll: float) -> Vec:
    """World (z up) to sensor frame: the watch pitched about x, then rolled about y."""
    x, y, z = f
    cp, sp = math.cos(pitch), math.sin(pitch)
    y, z = cp * y + sp * z, -sp * y + cp * z
    cr, sr = math.cos(roll), math.sin(roll)
    x, z = cr * x - sr * z, sr * x + cr * z
    return (x, y, z)


def _rad(rng: random.Random, lo: float, hi: float) -> float:
    return math.radians(rng.uniform(lo, hi))


# Heights above the floor, for a barometer (docs/figures.md lists them):
# - [W09] Winter, Biomechanics and Motor Control of Human Movement, 4th ed. (2009),
#   fig. 4.1, after Drillis & Contini (1966): standing, the wrist is at 0.485 H and
#   the elbow at 0.630 H, H the body height.
# - body height of an older wearer: ASSUMPTION 1.50-1.85 m.
# - seats: chairs 0.40-0.48 m, sofas 0.38-0.46 m; seated, the thigh is 0.13-0.18 m
#   thick, and an armrest 0.18-0.25 m above the seat. ASSUMPTIONS (furniture and
#   anthropometric tables vary by country).
# - on the floor after a fall the wrist lies on the floor or on the body: 0.03-0.25 m.
#   ASSUMPTION.
def body_height(rng: random.Random) -> float:
    return rng.uniform(1.50, 1.85)


def standing_wrist(body: float) -> float:
    return 0.485 * body  # [W09]


def seated_wrist(rng: random.Random, seat: tuple[float, float]) -> float:
    """The forearm on the lap, or (three times in ten, ASSUMPTION) on an armrest."""
    base = rng.uniform(*seat)
    if rng.random() < 0.3:
        return base + rng.uniform(0.18, 0.25)
    return base + rng.uniform(0.13, 0.18) + 0.02


def floor_wrist(rng: random.Random, high: float = 0.25) -> float:
    return rng.uniform(0.03, high)


CHAIR = (0.40, 0.48)
SOFA = (0.38, 0.46)


def _after_fall(m: Motion, pitch: float, roll: float) -> None:
    """Lying after the fall: still, or moving (trying to get up, reaching). Real-world
    fallers often move within seconds [P20]; share moving: ASSUMPTION 35 %."""
    if m.rng.random() < 0.35:
        m.lift_m = m.hrng.uniform(0.03, 0.15)
        for _ in range(3):
            m.wave(1.2, m.rng.uniform(0.5, 1.5), m.rng.uniform(100, 350), (1.0, 0.0, 0.3), pitch, roll,
                   swing_rad=_rad(m.rng, 5, 25), jitter_mg=50)
        m.lift_m = 0.0
        m.still(3.0, pitch, roll, jitter_mg=15)
    else:
        m.still(6.0, pitch, roll, jitter_mg=m.rng.uniform(5, 15))


def _fall_standing(rng: random.Random, turn: tuple[float, float], hand_p: float,
                   roll_turn: tuple[float, float]) -> Motion:
    m = Motion(rng)
    p0 = _rad(rng, -10, 20)  # arm hanging, the watch face out
    if rng.random() < 0.5:  # walking, or standing, before the fall
        m.lift_m = m.hrng.uniform(0.02, 0.06)
        m.wave(2.0, rng.uniform(1.5, 1.9), rng.uniform(150, 350), (0.0, 0.3, 1.0), p0, swing_rad=_rad(rng, 8, 20))
        m.lift_m = 0.0
    else:
        m.still(2.0, p0, jitter_mg=20)
    contact = min(1.0, max(0.45, rng.gauss(0.680, 0.116)))  # wrist contact time [R05]
    p1 = p0 + _rad(rng, *turn)
    r1 = _rad(rng, *roll_turn)
    # ASSUMPTION: the wrist's specific force bottoms between 0.15 and 0.75 g: protective
    # arm movements [H98] add their own acceleration to the body's drop.
    m.descend(contact, rng.uniform(150, 750), (p0, p1), (0.0, r1), jitter_mg=60, to_h=floor_wrist(m.hrng))
    t_hand = m.t
    if rng.random() < hand_p:  # the hand breaks the fall [F07]
        # ASSUMPTION: hand/wrist impact 3-12 g over 20-60 ms (beyond the +-4 g range: [C17])
        m.impact(rng.uniform(3000, 12000), rng.uniform(0.02, 0.06), (rng.uniform(-0.5, 0.5), 0.3, 1.0))
        body_at = t_hand + max(0.0, rng.gauss(0.045, 0.04))  # pelvis after the hand [H98] [F07]
    else:
        body_at = t_hand
    # the body's own impact reaches the wrist damped: ASSUMPTION 1.5-4 g over 60-120 ms
    m.impact(rng.uniform(1500, 4000), rng.uniform(0.06, 0.12), (0.0, 0.0, 1.0), at=body_at)
    m.still(0.3, p1, r1, jitter_mg=150)  # the rebound
    _after_fall(m, p1, r1)
    return m


def _fall_from_chair(rng: random.Random) -> Motion:
    m = Motion(rng)
    p0 = _rad(rng, 40, 70)  # forearm on the lap
    m.h = seated_wrist(m.hrng, CHAIR)
    m.still(2.0, p0, jitter_mg=15)
    # a 0.45 m seat drops the hip in ~0.3 s (sqrt(2h/g)); sliding off takes longer
    p1 = p0 + _rad(rng, 20, 80)
    r1 = _rad(rng, -40, 40)
    m.descend(rng.uniform(0.3, 0.6), rng.uniform(300, 800), (p0, p1), (0.0, r1), to_h=floor_wrist(m.hrng))
    m.impact(rng.uniform(1500, 5000), rng.uniform(0.04, 0.1))  # ASSUMPTION
    m.still(0.3, p1, r1, jitter_mg=120)
    _after_fall(m, p1, r1)
    return m


def _fall_slow_slump(rng: random.Random) -> Motion:
    """A faint or a slide down a wall: no free fall, a soft landing. Such falls are
    where detectors lose most sensitivity on real-world data [B12]."""
    m = Motion(rng)
    p0 = _rad(rng, -10, 30)
    m.still(2.0, p0, jitter_mg=20)
    p1 = p0 + _rad(rng, 40, 90)
    r1 = _rad(rng, -30, 30)
    # ASSUMPTION: the wrist ends on the floor or on the lap of one sitting slumped
    # against a wall or furniture: 0.03-0.35 m
    m.descend(rng.uniform(1.0, 2.5), rng.uniform(700, 950), (p0, p1), (0.0, r1), jitter_mg=30,
              to_h=floor_wrist(m.hrng, 0.35))
    m.impact(rng.uniform(1100, 2500), rng.uniform(0.1, 0.25))  # ASSUMPTION
    m.still(0.3, p1, r1, jitter_mg=60)
    _after_fall(m, p1, r1)
    return m


def _arm_drop_table(rng: random.Random) -> Motion:
    """A tired forearm let fall from raised onto a hard table: the wrist nearly free-falls
    about the elbow, then a short hard impact, then rests. ASSUMPTION: 0.15-0.35 s of drop,
    specific force down to 0.1-0.5 g, 4-15 g over 5-15 ms on a hard top."""
    m = Motion(rng)
    p0 = _rad(rng, 70, 110)  # forearm raised
    table = m.hrng.uniform(0.72, 0.76)  # ASSUMPTION: table tops
    m.h = table + (0.630 - 0.485) * m.body * math.sin(p0)  # the forearm's length [W09] above the elbow
    m.still(2.0, p0, jitter_mg=25)
    p1 = p0 - _rad(rng, 60, 100)  # the forearm comes to lie on the table
    m.descend(rng.uniform(0.15, 0.35), rng.uniform(100, 500), (p0, p1), (0.0, 0.0), jitter_mg=30,
              to_h=table + 0.03)
    m.impact(rng.uniform(4000, 15000), rng.uniform(0.005, 0.015))
    m.still(6.0, p1, 0.0, jitter_mg=rng.uniform(5, 15))
    return m


def _seat(rng: random.Random, descent: tuple[float, float], min_mg: tuple[float, float],
          peak: tuple[float, float], dur: tuple[float, float], turn: tuple[float, float],
          seat: tuple[float, float] = CHAIR) -> Motion:
    m = Motion(rng)
    p0 = _rad(rng, -10, 20)
    m.lift_m = m.hrng.uniform(0.02, 0.06)
    m.wave(2.0, rng.uniform(1.5, 1.9), rng.uniform(100, 300), (0.0, 0.3, 1.0), p0, swing_rad=_rad(rng, 5, 15))
    m.lift_m = 0.0
    p1 = p0 + _rad(rng, *turn)
    r1 = _rad(rng, -30, 30)
    m.descend(rng.uniform(*descent), rng.uniform(*min_mg), (p0, p1), (0.0, r1), to_h=seated_wrist(m.hrng, seat))
    m.impact(rng.uniform(*peak), rng.uniform(*dur))
    m.still(0.3, p1, r1, jitter_mg=80)
    m.still(6.0, p1, r1, jitter_mg=rng.uniform(8, 25))
    return m


def _clapping(rng: random.Random) -> Motion:
    """Applause: the hands swing together 2-4 times a second and collide.
    ASSUMPTION: 0.5-1.5 g swings, 4-12 g over 5-10 ms at each clap."""
    m = Motion(rng)
    pitch = _rad(rng, 50, 90)
    m.h = 0.72 * m.body  # ASSUMPTION: hands in front of the chest
    m.still(1.0, pitch, jitter_mg=20)
    rate = rng.uniform(2.0, 4.0)
    amp = rng.uniform(500, 1500)
    for _ in range(rng.randint(6, 20)):
        start = m.t
        m.wave(1.0 / rate, rate, amp, (1.0, 0.0, 0.0), pitch, jitter_mg=40)
        m.impact(rng.uniform(4000, 12000), rng.uniform(0.005, 0.01), (-1.0, 0.0, 0.0), at=start + 0.5 / rate)
    m.still(4.0, pitch, jitter_mg=20)
    return m


def _brushing_teeth(rng: random.Random) -> Motion:
    """One minute: strokes at 3-5 Hz along the forearm, the arm raised, pauses to rinse.
    ASSUMPTION: 0.4-1.2 g stroke amplitude."""
    m = Motion(rng)
    pitch = _rad(rng, 100, 140)
    sink = m.hrng.uniform(0.85, 0.95)  # ASSUMPTION: the hand at a basin's rim to rinse
    while m.t < 58:
        m.h = 0.87 * m.body  # ASSUMPTION: the hand at the mouth
        m.lift_m = m.hrng.uniform(0.01, 0.03)
        m.wave(rng.uniform(5, 15), rng.uniform(3, 5), rng.uniform(400, 1200), (0.0, 1.0, 0.2), pitch,
               swing_rad=_rad(rng, 3, 10), jitter_mg=40)
        m.lift_m = 0.0
        m.h = sink + m.hrng.uniform(0.0, 0.15)
        m.still(rng.uniform(1, 3), _rad(rng, 20, 80), jitter_mg=40)
    return m


def _car_door(rng: random.Random) -> Motion:
    """Walk up, swing the door shut: the hand stops with the door. ASSUMPTION: swing
    1-1.5 g for 0.4 s, 2-6 g over 15-40 ms when it shuts, no free fall."""
    m = Motion(rng)
    m.place = "outdoors"
    p0 = _rad(rng, -10, 20)
    m.wave(2.0, rng.uniform(1.5, 1.9), rng.uniform(150, 350), (0.0, 0.3, 1.0), p0, swing_rad=_rad(rng, 8, 20))
    p1 = _rad(rng, 40, 80)
    stand = m.h
    m.h = m.hrng.uniform(0.9, 1.1)  # ASSUMPTION: a car door's handle and top edge
    m.wave(0.4, 1.25, rng.uniform(1000, 1500), (1.0, 0.0, 0.0), p1, jitter_mg=60)
    m.impact(rng.uniform(2000, 6000), rng.uniform(0.015, 0.04), (-1.0, 0.0, 0.2))
    m.still(1.0, p1, jitter_mg=40)
    m.h = stand
    m.wave(5.0, rng.uniform(1.5, 1.9), rng.uniform(150, 350), (0.0, 0.3, 1.0), p0, swing_rad=_rad(rng, 8, 20))
    return m


def _bus_ride(rng: random.Random) -> Motion:
    """One minute seated on a bus, the forearm on the lap. ASSUMPTION: vertical vibration
    of 30-80 mg rms (0.3-0.8 m/s2, the range ISO 2631-1 readings of buses fall in),
    a bump (0.3-0.8 g, 50-150 ms) every 5-20 s, and half the minutes a pothole: a
    short drop (0.4-0.7 g for 60-150 ms) then a 1.5-3 g jolt."""
    m = Motion(rng)
    m.place = "vehicle"
    pitch = _rad(rng, 40, 70)
    vib = rng.uniform(30, 80)
    next_bump = rng.uniform(2, 10)
    pothole_at = rng.uniform(5, 50) if rng.random() < 0.5 else None
    m.h = seated_wrist(m.hrng, CHAIR)
    # The road climbs and falls: ASSUMPTION 5-13 m/s on grades wandering within about
    # +-6 %, so the bus rises or sinks up to ~0.8 m/s (a barometer's confounder).
    speed = m.hrng.uniform(5, 13)
    grade = m.hrng.uniform(-0.04, 0.04)
    while m.t < 60:
        grade = max(-0.08, min(0.08, 0.98 * grade + m.hrng.gauss(0.0, 0.006)))
        m.h += speed * grade * 0.2
        if pothole_at is not None and m.t >= pothole_at:
            m.descend(rng.uniform(0.06, 0.15), rng.uniform(400, 700), (pitch, pitch), (0.0, 0.0), jitter_mg=vib)
            m.impact(rng.uniform(1500, 3000), rng.uniform(0.05, 0.12))
            pothole_at = None
        if m.t >= next_bump:
            m.impact(rng.uniform(300, 800), rng.uniform(0.05, 0.15))
            next_bump = m.t + rng.uniform(5, 20)
        m.still(0.2, pitch + _rad(rng, -3, 3), _rad(rng, -3, 3), jitter_mg=vib)
    return m


def _walking(rng: random.Random) -> Motion:
    """One minute of walking: 1.5-2 steps/s (older adults walk ~100 steps/min: ASSUMPTION),
    0.2-0.5 g at the wrist per step, an arm swing of 10-30 degrees, heel strikes."""
    m = Motion(rng)
    m.place = "outdoors" if m.hrng.random() < 0.5 else "indoors"  # ASSUMPTION
    cadence = rng.uniform(1.5, 2.0)
    amp = rng.uniform(200, 500)
    p0 = _rad(rng, -10, 20)
    m.lift_m = m.hrng.uniform(0.02, 0.06)  # ASSUMPTION: the wrist rises and falls with the swing
    while m.t < 60:
        step = m.t
        m.wave(1.0 / cadence, cadence, amp, (0.0, 0.3, 1.0), p0, swing_rad=_rad(rng, 10, 30), jitter_mg=40)
        m.impact(rng.uniform(300, 800), rng.uniform(0.03, 0.06), at=step)
    return m


def _stairs(rng: random.Random) -> Motion:
    """A flight of 12-14 steps down (the harder way for the wrist): each step lowers the
    body (0.6-0.85 g for 0.1-0.2 s) then lands (0.5-1.5 g). ASSUMPTION."""
    m = Motion(rng)
    p0 = _rad(rng, -10, 30)
    m.still(1.0, p0, jitter_mg=20)
    riser = m.hrng.uniform(0.15, 0.19)  # ASSUMPTION: domestic stair risers
    for _ in range(rng.randint(12, 14)):
        cadence = rng.uniform(1.2, 1.6)
        m.descend(rng.uniform(0.1, 0.2), rng.uniform(600, 850), (p0, p0), (0.0, 0.0), jitter_mg=40,
                  to_h=m.h - riser)
        m.impact(rng.uniform(500, 1500), rng.uniform(0.04, 0.08))
        m.wave(1.0 / cadence - 0.15, cadence, rng.uniform(150, 400), (0.0, 0.3, 1.0), p0,
               swing_rad=_rad(rng, 5, 15), jitter_mg=40)
    m.still(3.0, p0, jitter_mg=20)
    return m


GENERATORS: dict[str, Callable[[random.Random], Motion]] = {
    "fall_forward": lambda r: _fall_standing(r, (50, 110), 0.9, (-20, 20)),
    "fall_backward": lambda r: _fall_standing(r, (30, 100), 0.5, (-30, 30)),
    "fall_lateral": lambda r: _fall_standing(r, (30, 80), 0.8, (40, 100)),
    "fall_from_chair": _fall_from_chair,
    "fall_slow_slump": _fall_slow_slump,
    "arm_drop_table": _arm_drop_table,
    # ASSUMPTION: a flop back onto a sofa: 0.35-0.6 s down to 0.25-0.7 g, 1.5-3.5 g into the cushion
    "sofa_flop": lambda r: _seat(r, (0.35, 0.6), (250, 700), (1500, 3500), (0.08, 0.2), (20, 80), SOFA),
    # sitting down quickly: a leading source of false alarms in SisFall [S17]. ASSUMPTION: figures
    "sitting_hard": lambda r: _seat(r, (0.25, 0.5), (400, 800), (1500, 3000), (0.05, 0.12), (10, 60)),
    "sitting_down": lambda r: _seat(r, (0.6, 1.2), (750, 900), (1100, 1500), (0.1, 0.2), (10, 60)),
    "clapping": _clapping,
    "brushing_teeth": _brushing_teeth,
    "car_door": _car_door,
    "bus_ride": _bus_ride,
    "walking": _walking,
    "stairs": _stairs,
}


def motion(label: str, trace_set: str, index: int) -> Motion:
    if trace_set not in SETS:
        raise ValueError(f"trace set {trace_set!r}: one of {SETS}")
    if label not in GENERATORS:
        raise ValueError(f"no motion {label!r}: falls {', '.join(FALLS)}; activities {', '.join(ACTIVITIES)}")
    return GENERATORS[label](random.Random(f"{trace_set}:{label}:{index}"))


def generate(label: str, trace_set: str, index: int, readout: Readout = FIRMWARE_CONFIG) -> list[list[int]]:
    """One trace as the firmware reads it: [[x, y, z] mg, ...] at ``HZ``."""
    return motion(label, trace_set, index).read(readout)


def generate_with_pressure(label: str, trace_set: str, index: int) -> tuple[list[list[int]], list[int]]:
    """One trace as a watch with a barometer reads it: the accelerometer samples (the
    same as ``generate``'s) and the pressures (dPa at BARO_CONFIG.odr_hz)."""
    m = motion(label, trace_set, index)
    return m.read(), m.read_pressure()


def labelled_set(trace_set: str, per_label: int) -> list[tuple[str, int, list[list[int]]]]:
    return [(label, i, generate(label, trace_set, i)) for label in FALLS + ACTIVITIES for i in range(per_label)]
