"""Labelled accelerometer traces of a wrist: falls and the daily moves that look like them.

Samples are [x, y, z] in milli-g at ``HZ``. Each generator draws its shape from a
seeded random source, so a set of traces is reproducible yet varied: some falls
are soft (from a chair, little free fall) and some daily moves are hard (a heavy
sit), which is what makes a detector's sensitivity and specificity honest.
"""
from __future__ import annotations

import math
import random

HZ = 50
FALLS = ("fall_forward", "fall_backward", "fall_sideways", "fall_from_chair")
ACTIVITIES = ("sitting_hard", "clapping", "walking", "stairs")
ALIASES = {"forward": "fall_forward", "backward": "fall_backward", "sideways": "fall_sideways",
           "from_chair": "fall_from_chair", "chair": "fall_from_chair"}

Sample = list[int]


def _n(rng: random.Random, s: float) -> float:
    return rng.gauss(0.0, s)


def _vec(g: float, theta: float, phi: float = 0.0) -> tuple[float, float, float]:
    """A vector of magnitude g (milli-g), theta away from the arm-down direction (-y)."""
    return (g * math.sin(theta) * math.cos(phi), -g * math.cos(theta), g * math.sin(theta) * math.sin(phi))


def _emit(out: list[Sample], v, rng, noise=15.0) -> None:
    out.append([int(v[0] + _n(rng, noise)), int(v[1] + _n(rng, noise)), int(v[2] + _n(rng, noise))])


def _still(out, rng, seconds, theta, phi=0.0, noise=15.0, sway=0.0) -> None:
    for i in range(int(seconds * HZ)):
        t = theta + sway * math.sin(i / HZ * 2 * math.pi * 0.7)
        _emit(out, _vec(1000, t, phi), rng, noise)


def _fall(rng: random.Random, ff_s: tuple, ff_g: tuple, impact_g: tuple, turn_deg: tuple) -> list[Sample]:
    out: list[Sample] = []
    _still(out, rng, 1.0, 0.1, noise=25, sway=0.08)
    ff = rng.uniform(*ff_s)
    floor = rng.uniform(*ff_g)
    n = int(ff * HZ)
    for i in range(n):
        g = 1000 - (1000 - floor) * min(1.0, (i + 1) / max(1, n * 0.4))  # the drop, then near weightless
        _emit(out, _vec(g, 0.1 + i * 0.05), rng, 30)
    peak = rng.uniform(*impact_g)
    phi = rng.uniform(0, 2 * math.pi)
    for f in (0.5, 1.0, 0.7, 0.35):
        _emit(out, _vec(peak * f, rng.uniform(0, math.pi), phi), rng, 60)
    turn = math.radians(rng.uniform(*turn_deg))
    for _ in range(int(0.3 * HZ)):  # rebound
        _emit(out, _vec(1000 + _n(rng, 300), turn, phi), rng, 80)
    _still(out, rng, 3.5, turn, phi, noise=12)
    return out


def _sitting_hard(rng: random.Random) -> list[Sample]:
    out: list[Sample] = []
    _still(out, rng, 1.0, 0.1, noise=25, sway=0.1)
    dip = rng.uniform(380, 800)
    for _ in range(int(rng.uniform(0.1, 0.3) * HZ)):
        _emit(out, _vec(dip, 0.2), rng, 30)
    peak = rng.uniform(1500, 2900)
    for f in (0.6, 1.0, 0.5):
        _emit(out, _vec(peak * f, 0.3), rng, 50)
    turn = math.radians(rng.uniform(5, 50))
    _still(out, rng, 3.5, turn, noise=15)
    return out


def _clapping(rng: random.Random) -> list[Sample]:
    out: list[Sample] = []
    for _ in range(rng.randint(4, 8)):
        for i in range(int(0.25 * HZ)):  # the swing
            g = 1000 + 700 * math.sin(i / (0.25 * HZ) * math.pi) * rng.choice((-0.6, 1))
            _emit(out, _vec(g, 1.2 + _n(rng, 0.1)), rng, 60)
        for f in (1.0, 0.4):
            _emit(out, _vec(rng.uniform(3000, 6000) * f, 1.3), rng, 80)
    _still(out, rng, 0.5, 1.2, noise=60, sway=0.2)
    return out


def _walking(rng: random.Random, stairs: bool = False) -> list[Sample]:
    out: list[Sample] = []
    amp = rng.uniform(250, 450) if not stairs else rng.uniform(450, 750)
    step_hz = rng.uniform(1.6, 2.2) if not stairs else rng.uniform(1.2, 1.6)
    for i in range(int(rng.uniform(5, 7) * HZ)):
        t = i / HZ
        g = 1000 + amp * math.sin(2 * math.pi * step_hz * t)
        if stairs and (i % int(HZ / step_hz)) == 0:
            g += rng.uniform(500, 1100)  # the heel strike on a step down
        _emit(out, _vec(g, 0.3 + 0.25 * math.sin(2 * math.pi * step_hz / 2 * t)), rng, 40)
    return out


def generate(label: str, seed: int = 0) -> list[Sample]:
    label = ALIASES.get(label, label)
    rng = random.Random(f"{label}:{seed}")
    if label == "fall_forward":
        return _fall(rng, (0.3, 0.55), (100, 450), (2400, 6000), (60, 100))
    if label == "fall_backward":
        return _fall(rng, (0.3, 0.5), (100, 450), (2200, 5500), (55, 100))
    if label == "fall_sideways":
        return _fall(rng, (0.25, 0.45), (150, 500), (2200, 5000), (50, 95))
    if label == "fall_from_chair":
        return _fall(rng, (0.08, 0.3), (300, 650), (1700, 3600), (35, 90))
    if label == "sitting_hard":
        return _sitting_hard(rng)
    if label == "clapping":
        return _clapping(rng)
    if label == "walking":
        return _walking(rng)
    if label == "stairs":
        return _walking(rng, stairs=True)
    raise ValueError(f"no trace {label!r}: falls {', '.join(FALLS)}; activities {', '.join(ACTIVITIES)}")


def is_fall(label: str) -> bool:
    return ALIASES.get(label, label) in FALLS


def labelled_set(per_label: int) -> list[tuple[str, int, list[Sample]]]:
    """(label, seed, samples) for every label, ``per_label`` seeds each."""
    return [(label, seed, generate(label, seed)) for label in FALLS + ACTIVITIES for seed in range(per_label)]
