"""What a wrist barometer reports for a motion: the air's pressure at the wrist's height,
what moves the air around it, and the part's noise, filter, rate and resolution.

The motion (hwsim/wrist_motion.py) gives the wrist's height above the floor per
sample; this module turns it into the pressures the firmware drains from the
barometer's FIFO (the BMP390 as firmware/hal/bmp390.py configures it): integers in
decipascals (Pa x 10), oldest first, at the part's output rate.

- Height to pressure: the ICAO standard atmosphere (ISO 2533), as hwsim's world
  has it (hwsim/bmp390.py isa_pressure_pa), at the site's altitude plus the
  wrist's height: about 12 Pa a metre at sea level.
- The part: white noise per output sample (its RMS at the configured oversampling),
  its IIR filter (each output = (previous x c + new) / (c + 1), c the coefficient),
  and the driver's 0.1 Pa integer.
- The air: indoors, slow ventilation drift and, in two traces of ten, a door's
  pressure pulse; outdoors, gusts; in a vehicle, its ventilation. All ASSUMPTIONS
  (docs/figures.md): the figures are ranges a partner should replace with readings
  from their own wearers.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hwsim.bmp390 import isa_pressure_pa


@dataclass(frozen=True)
class BaroReadout:
    # As firmware/hal/bmp390.py sets the part: 6.25 Hz, pressure x2, IIR coefficient 1.
    odr_hz: float = 6.25
    # RMS per conversion at x2 before the filter: the datasheet's 0.02 Pa at its
    # lowest-noise setting (x32, strongest filter) scaled by 1/sqrt(oversampling):
    # 1.8 Pa at x1, 1.27 at x2 (ASSUMPTION: the datasheet text found gives no table
    # per oversampling; hwsim/bmp390.py makes the same choice). After the filter
    # (coefficient 1) a frame's spread is 0.73 Pa.
    noise_pa: float = 1.27
    iir_coeff: int = 1

    def read(self, heights: list[float], accel_hz: float, rng: random.Random, place: str = "indoors") -> list[int]:
        """Pressures (dPa) at ``odr_hz`` for heights sampled at ``accel_hz``."""
        site_m = rng.uniform(0.0, 600.0)            # where the wearer lives
        sea_level_pa = rng.uniform(99000.0, 103500.0)  # the day's weather
        n = int(len(heights) / accel_hz * self.odr_hz)
        air = _Air(place, rng, self.odr_hz)
        out: list[int] = []
        y: float | None = None
        for k in range(n):
            h = heights[min(len(heights) - 1, int((k + 1) / self.odr_hz * accel_hz) - 1)]
            x = isa_pressure_pa(site_m + h, sea_level_pa) + air.step() + rng.gauss(0.0, self.noise_pa)
            y = x if y is None else (y * self.iir_coeff + x) / (self.iir_coeff + 1)
            out.append(int(round(y * 10)))
        return out


class _Air:
    """Pressure changes at the wrist that are not the wrist's height (ASSUMPTIONS)."""

    def __init__(self, place: str, rng: random.Random, hz: float):
        self.rng, self.dt = rng, 1.0 / hz
        if place == "outdoors":    # gusts: a few Pa over a second or two
            self.sd, self.tau = rng.uniform(1.5, 5.0), rng.uniform(0.8, 2.5)
        elif place == "vehicle":   # fans, windows, the vehicle's own speed changes
            self.sd, self.tau = rng.uniform(1.0, 3.0), rng.uniform(1.0, 3.0)
        elif place == "still":     # a sealed room: the part's own noise alone
            self.sd, self.tau = 0.0, 1.0
        else:                      # ventilation, a heater, people moving about
            self.sd, self.tau = rng.uniform(0.2, 1.0), rng.uniform(3.0, 8.0)
        self.x = rng.gauss(0.0, self.sd)
        # indoors, a door shut or opened nearby: a pulse of 2-8 Pa either way that
        # decays over 0.3-1 s, in two traces of ten, at a random time
        self.door_at = rng.uniform(0.0, 8.0) if place == "indoors" and rng.random() < 0.2 else None
        self.door_amp = rng.choice((-1, 1)) * rng.uniform(2.0, 8.0)
        self.door_tau = rng.uniform(0.3, 1.0)
        self.t = 0.0

    def step(self) -> float:
        a = math.exp(-self.dt / self.tau)
        self.x = a * self.x + math.sqrt(1 - a * a) * self.rng.gauss(0.0, self.sd)
        self.t += self.dt
        door = 0.0
        if self.door_at is not None and self.t >= self.door_at:
            door = self.door_amp * math.exp(-(self.t - self.door_at) / self.door_tau)
        return self.x + door


FIRMWARE_CONFIG = BaroReadout()
