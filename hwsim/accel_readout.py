"""What the watch's LIS3DH reports for a motion: its bandwidth, noise, resolution and range.

The motion (hwsim/wrist_motion.py) gives the true specific force at the wrist; this
module turns it into the samples the firmware reads from the FIFO, with the
limits of the part as the firmware configures it (firmware/hal/esp32.py writes
CTRL_REG1 0x47 and CTRL_REG4 0x18: 50 Hz, high-resolution 12-bit, +-4 g).

Figures from the LIS3DH datasheet (ST DocID17530, "MEMS digital output motion
sensor", table 4 "Mechanical characteristics", table 12 "Operating mode selection"):
- sensitivity in high-resolution mode at +-4 g: 2 mg/digit (12-bit, left-justified
  in 16 bits); normal mode 8 mg/digit (10-bit); low-power 32 mg/digit (8-bit);
- noise density (normal mode): 220 ug/sqrt(Hz);
- the output is sampled at the ODR; the digital filter chain averages over the
  sample period, which an impact shorter than 20 ms is spread across.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Readout:
    odr_hz: int = 50             # CTRL_REG1 ODR = 0100
    lsb_mg: float = 2.0          # CTRL_REG4 FS = 01 (+-4 g), HR = 1: 2 mg/digit
    bits: int = 12               # CTRL_REG4 HR = 1, CTRL_REG1 LPen = 0: 12-bit
    noise_ug_rthz: float = 220.0  # datasheet noise density

    @property
    def range_mg(self) -> float:
        """The largest reading: the top code times the LSB (4094 mg at +-4 g, 12-bit)."""
        return self.code_limits()[1] * self.lsb_mg

    @property
    def noise_rms_mg(self) -> float:
        """White noise over the output bandwidth (ODR/2): density x sqrt(bandwidth)."""
        return self.noise_ug_rthz * math.sqrt(self.odr_hz / 2) / 1000.0

    def code_limits(self) -> tuple[int, int]:
        half = 1 << (self.bits - 1)
        return -half, half - 1

    def sample(self, true_mg: tuple[float, float, float], rng: random.Random) -> list[int]:
        """One FIFO sample in mg, as firmware/hal/esp32.py converts it: the code times
        the LSB (an integer), clipped at the code range (the part saturates)."""
        lo, hi = self.code_limits()
        lsb = self.lsb_mg
        out = []
        for v in true_mg:
            code = math.floor((v + rng.gauss(0.0, self.noise_rms_mg)) / lsb)  # the ADC truncates
            out.append(int(max(lo, min(hi, code)) * lsb))
        return out


FIRMWARE_CONFIG = Readout()
