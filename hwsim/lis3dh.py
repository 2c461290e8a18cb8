"""The ST LIS3DH accelerometer, at register level, on the board's I2C bus.

The firmware's driver (``hal/lis3dh.py``) reads and writes it through
``machine.I2C``'s ``readfrom_mem`` / ``writeto_mem``; each transfer carries the
board's millisecond tick, and the model samples the world's motion at the
configured rate up to that moment. From the LIS3DH datasheet (DocID17530 Rev 2)
and ST application note AN3308:

* 6.1.1, I2C: a multi-byte transfer auto-increments the register address only
  when the sub-address MSB is set; without it the same register is read again.
* 8.6 WHO_AM_I (0x0F) reads 0x33; 8.8 CTRL_REG1: ODR[7:4] (0: power down; 1,
  10, 25, 50, 100, 200, 400 Hz), LPen, Z/Y/X enable; 8.11 CTRL_REG4: FS[5:4]
  (+-2/4/8/16 g) and HR; 3.2.1 and Table 4: 8-bit (low power), 10-bit (normal)
  or 12-bit (HR) data, left-justified in OUT_x_L/H, at 16/32/64/192,
  4/8/16/48 or 1/2/4/12 mg a digit.
* 8.10 CTRL_REG3: I1_IA1 (bit 6) routes interrupt generator 1 to INT1;
  8.13 CTRL_REG6: INT_POLARITY (bit 1), 0 = active high; 8.12 CTRL_REG5:
  FIFO_EN (bit 6), LIR_INT1 (bit 3, latched until INT1_SRC is read).
* 8.18-8.19 FIFO_CTRL FM[7:6] (bypass, FIFO, stream, stream-to-FIFO) and
  FIFO_SRC (WTM, OVRN_FIFO, EMPTY, FSS[4:0]); 32 levels. Reading OUT_X_L..
  OUT_Z_H in one auto-incremented burst with the FIFO on wraps from 0x2D back
  to 0x28 and takes one sample after the other (AN3308 9.3.1). FSS is 5
  bits: with all 32 levels full the model reads 0 there and OVRN_FIFO 1 (an
  assumption the datasheet leaves open; the driver trusts OVRN_FIFO).
* 8.20-8.23 INT1_CFG (AOI, 6D, ZHIE, ZLIE, YHIE, YLIE, XHIE, XLIE), INT1_SRC
  (IA, ZH, ZL, YH, YL, XH, XL; reading it clears a latched event and lowers
  the pin), INT1_THS (7 bits; 16/32/62/186 mg a step by FS), INT1_DURATION
  (7 bits, in 1/ODR steps: the event must last that many samples, at least one). A high event is
  |a| above the threshold, a low event |a| below it (AN3308 6.2, 6.3: the
  free-fall zone is all three axes near 0 g, AND of the low events). The 6D
  modes are not modelled: INT1_CFG with 6D set raises nothing and is counted
  in ``unmodelled``.
* Interrupt generator 2 (INT2_CFG/SRC/THS/DURATION, 0x34-0x37) works as the first,
  polled through INT2_SRC (its pin, CTRL_REG6 I2_IA2, is not modelled), latched by
  CTRL_REG5 LIR_INT2 (bit 1). With CTRL_REG2 HPIS2 (bit 1) it sees the samples
  through the high-pass filter (AN3308 6.2.2, the inertial wake-up that ignores
  gravity): modelled as a first-order high-pass, y = a (y' + x - x'), cut-off
  ODR/50 halved per HPCF step (1 Hz at 50 Hz with HPCF 00, as ST's support
  states); only HPM 00 (normal mode). Its state starts at zero at power-up, so the
  first samples are a step of 1 g (a transient) unless the REFERENCE register
  (0x26) was read: in normal mode that read sets the filter to the current field.
"""
from __future__ import annotations

import math
from collections.abc import Callable

LIS3DH_ADDR = 0x19
ODR_HZ = {1: 1, 2: 10, 3: 25, 4: 50, 5: 100, 6: 200, 7: 400}
MG_PER_DIGIT = {"hr": (1, 2, 4, 12), "normal": (4, 8, 16, 48), "lp": (16, 32, 64, 192)}
BITS = {"hr": 12, "normal": 10, "lp": 8}
THS_MG = (16, 32, 62, 186)
FIFO_DEPTH = 32
WHO_AM_I, CTRL_REG1, CTRL_REG3, CTRL_REG4, CTRL_REG5, CTRL_REG6 = 0x0F, 0x20, 0x22, 0x23, 0x24, 0x25
OUT_X_L, OUT_Z_H, FIFO_CTRL, FIFO_SRC = 0x28, 0x2D, 0x2E, 0x2F
INT1_CFG, INT1_SRC, INT1_THS, INT1_DURATION = 0x30, 0x31, 0x32, 0x33
CTRL_REG2, REFERENCE = 0x21, 0x26
INT2_CFG, INT2_SRC, INT2_THS, INT2_DURATION = 0x34, 0x35, 0x36, 0x37
READ_ONLY = {0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, WHO_AM_I, 0x27, 0x28, 0x29, 0x2A, 0x2B,
             0x2C, 0x2D, FIFO_SRC, INT1_SRC, 0x35, 0x39}

Motion = Callable[[float], tuple[float, float, float]]  # seconds since power-up -> (x, y, z) milli-g


class Lis3dh:
    def __init__(self, motion: Motion):
        self.motion = motion
        self.reads = self.writes = 0
        self.unmodelled: list[str] = []
        self.int1_edges: list[int] = []   # board ms at which INT1 went active
        self.regs = bytearray(0x40)
        self.regs[WHO_AM_I] = 0x33
        self.regs[CTRL_REG1] = 0x07       # reset value: power down, axes enabled
        self.fifo: list[tuple[int, int, int]] = []
        self.out = (0, 0, 0)
        self.ovrn = False
        self.on_at: int | None = None     # board ms of power-up
        self.made = 0
        self.src = 0                      # INT1_SRC
        self.count = 0                    # consecutive samples in the interrupt condition
        self.frozen = False               # stream-to-FIFO after its trigger: FIFO mode
        self.now = 0
        self.sample_at = 0                # board ms of the latest sample
        self.src2, self.count2 = 0, 0       # INT2_SRC; samples in its condition
        self.int2_edges: list[int] = []     # board ms at which generator 2 became active
        self.hp_in: tuple[float, float, float] | None = (0.0, 0.0, 0.0)  # None: set by the next sample
        self.hp_out = (0.0, 0.0, 0.0)

    # --- configuration ----------------------------------------------------------------
    def odr(self) -> int:
        return ODR_HZ.get(self.regs[CTRL_REG1] >> 4, 0)

    def mode(self) -> str:
        if self.regs[CTRL_REG1] & 0x08:
            return "lp"
        return "hr" if self.regs[CTRL_REG4] & 0x08 else "normal"

    def fs(self) -> int:
        return (self.regs[CTRL_REG4] >> 4) & 3

    def fifo_mode(self) -> int:
        return self.regs[FIFO_CTRL] >> 6 if self.regs[CTRL_REG5] & 0x40 else 0

    def int1(self) -> int:
        """The INT1 pin's level now."""
        active = bool(self.src & 0x40) and bool(self.regs[CTRL_REG3] & 0x40)
        return int(active) ^ (1 if self.regs[CTRL_REG6] & 0x02 else 0)

    # --- sampling -------------------------------------------------------------------------
    def advance(self, t_ms: int) -> None:
        """Takes the samples due by the board's time t_ms."""
        self.now = max(self.now, t_ms)
        hz = self.odr()
        if not hz or self.on_at is None:
            return
        due = (self.now - self.on_at) * hz // 1000
        while self.made < due:
            self.made += 1
            self.sample_at = self.on_at + self.made * 1000 // hz
            self._sample(self.motion(self.made / hz))

    def push(self, mg: tuple[float, float, float]) -> None:
        """One sample of a trace the scenario plays at its own pace (hwsim/board.py
        in deep sleep): into the FIFO and the interrupt generator, as one at the ODR."""
        if self.odr():
            self._sample(mg)

    def _digits(self, mg: float) -> int:
        mode = self.mode()
        bits = BITS[mode]
        v = int(round(mg / MG_PER_DIGIT[mode][self.fs()]))
        v = max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, v))
        return (v << (16 - bits)) & 0xFFFF

    def _sample(self, mg: tuple[float, float, float]) -> None:
        enabled = self.regs[CTRL_REG1] & 7
        raw = tuple(self._digits(a) if enabled & (1 << i) else 0 for i, a in enumerate(mg))
        self.out = raw  # type: ignore[assignment]
        mode = self.fifo_mode()
        if mode:
            holds = mode == 1 or (mode == 3 and self.frozen)  # FIFO mode: it stops when full
            if len(self.fifo) < FIFO_DEPTH:
                self.fifo.append(raw)  # type: ignore[arg-type]
            elif not holds:
                self.fifo.pop(0)       # stream: the oldest sample is lost
                self.fifo.append(raw)  # type: ignore[arg-type]
            if len(self.fifo) >= FIFO_DEPTH:
                self.ovrn = True
        self._interrupt(mg)
        self._interrupt2(self._high_pass(mg))

    def _high_pass(self, mg: tuple[float, float, float]) -> tuple[float, float, float]:
        if not self.regs[CTRL_REG2] & 0x02:      # HPIS2 clear: generator 2 sees the raw data
            return mg
        if self.hp_in is None:                   # REFERENCE read: the filter starts at this field
            self.hp_in, self.hp_out = mg, (0.0, 0.0, 0.0)
        fc = self.odr() / 50 / (1 << ((self.regs[CTRL_REG2] >> 4) & 3))
        a = 1 / (1 + 2 * math.pi * fc / self.odr())
        out = tuple(a * (y + x - xp) for x, xp, y in zip(mg, self.hp_in, self.hp_out))
        self.hp_in, self.hp_out = mg, out  # type: ignore[assignment]
        return out  # type: ignore[return-value]

    def _interrupt2(self, mg: tuple[float, float, float]) -> None:
        cfg = self.regs[INT2_CFG]
        if cfg & 0x40:
            if "6D" not in self.unmodelled:
                self.unmodelled.append("6D")
            return
        ths = (self.regs[INT2_THS] & 0x7F) * THS_MG[self.fs()]
        flags = 0
        for axis, a in enumerate(mg):
            flags |= (2 << (2 * axis)) if abs(a) > ths else (1 << (2 * axis))
        enabled = cfg & 0x3F
        hits = flags & enabled
        met = bool(enabled) and (hits == enabled if cfg & 0x80 else bool(hits))
        self.count2 = self.count2 + 1 if met else 0
        if met and self.count2 >= max(1, self.regs[INT2_DURATION] & 0x7F):
            if not self.src2 & 0x40:
                self.int2_edges.append(self.sample_at)
            self.src2 = 0x40 | hits
        elif not self.regs[CTRL_REG5] & 0x02:
            self.src2 = 0

    def _interrupt(self, mg: tuple[float, float, float]) -> None:
        cfg = self.regs[INT1_CFG]
        if cfg & 0x40:
            if "6D" not in self.unmodelled:
                self.unmodelled.append("6D")
            return
        ths = (self.regs[INT1_THS] & 0x7F) * THS_MG[self.fs()]
        flags = 0
        for axis, a in enumerate(mg):
            if abs(a) > ths:
                flags |= 2 << (2 * axis)   # XH, YH, ZH
            else:
                flags |= 1 << (2 * axis)   # XL, YL, ZL
        enabled = cfg & 0x3F
        hits = flags & enabled
        met = bool(enabled) and (hits == enabled if cfg & 0x80 else bool(hits))
        self.count = self.count + 1 if met else 0
        latched = bool(self.regs[CTRL_REG5] & 0x08)
        if met and self.count >= max(1, self.regs[INT1_DURATION] & 0x7F):
            if not self.src & 0x40:
                self.int1_edges.append(self.sample_at)
                if self.fifo_mode() == 3:
                    self.frozen = True  # stream-to-FIFO: the trigger (TR = 0: INT1)
            self.src = 0x40 | hits
        elif not latched:
            self.src = 0

    # --- registers ----------------------------------------------------------------------
    def read(self, sub: int, n: int, t_ms: int) -> bytes:
        self.advance(t_ms)
        self.reads += 1
        inc, reg = bool(sub & 0x80), sub & 0x7F
        out = bytearray()
        for _ in range(n):
            out.append(self._read_one(reg))
            if inc:
                if reg == OUT_Z_H and self.fifo_mode():
                    reg = OUT_X_L
                else:
                    reg = (reg + 1) & 0x7F
        return bytes(out)

    def _read_one(self, reg: int) -> int:
        if OUT_X_L <= reg <= OUT_Z_H:
            sample = self.fifo[0] if self.fifo_mode() and self.fifo else self.out
            i = reg - OUT_X_L
            value = sample[i // 2] >> (8 if i % 2 else 0) & 0xFF
            if reg == OUT_Z_H and self.fifo_mode() and self.fifo:
                self.out = self.fifo.pop(0)
                self.ovrn = False
            return value
        if reg == FIFO_SRC:
            n = len(self.fifo)
            wtm = n > (self.regs[FIFO_CTRL] & 0x1F)
            return wtm << 7 | (self.ovrn or n >= FIFO_DEPTH) << 6 | (n == 0) << 5 | (n & 0x1F)
        if reg == INT2_SRC:
            value = self.src2
            if self.regs[CTRL_REG5] & 0x02:
                self.src2, self.count2 = 0, 0  # latched: cleared by this read
            return value
        if reg == REFERENCE and not self.regs[CTRL_REG2] >> 6:
            self.hp_in = None                  # normal mode: the filter takes the current field
            return self.regs[reg]
        if reg == INT1_SRC:
            value = self.src
            if self.regs[CTRL_REG5] & 0x08:
                self.src, self.count = 0, 0   # latched: cleared by this read
            return value
        return self.regs[reg] if reg < len(self.regs) else 0

    def write(self, sub: int, data: bytes, t_ms: int) -> None:
        self.advance(t_ms)
        self.writes += 1
        inc, reg = bool(sub & 0x80), sub & 0x7F
        for value in data:
            self._write_one(reg, value)
            if inc:
                reg = (reg + 1) & 0x7F

    def _write_one(self, reg: int, value: int) -> None:
        if reg in READ_ONLY or reg >= len(self.regs) or reg < 0x1E:
            self.unmodelled.append(f"write to 0x{reg:02X}")
            return
        was_on = bool(self.odr())
        self.regs[reg] = value
        if reg == CTRL_REG1:
            if self.odr() and not was_on:
                self.on_at, self.made = self.now, 0
            elif not self.odr():
                self.on_at = None
        elif reg == FIFO_CTRL and value >> 6 == 0:
            self.fifo, self.ovrn, self.frozen = [], False, False  # bypass empties the FIFO (8.18)
        elif reg == CTRL_REG5 and value & 0x80:
            self.unmodelled.append("BOOT")


class OnTheBus:
    """The part on hwsim's I2C bus (hwsim/i2c.py I2CBus: register transfers without
    the board's tick). Its samples come only from ``push`` there, never from the
    clock, so the bus's time stays 0."""

    def __init__(self, part: Lis3dh):
        self.part = part

    def read(self, reg: int, n: int) -> bytes:
        return self.part.read(reg, n, 0)

    def write(self, reg: int, data: bytes) -> None:
        self.part.write(reg, data, 0)


class ActivityFilter:
    """Interrupt generator 2 as ``hal/lis3dh.py`` sets it up, for the simulated board
    (which gets the FIFO's samples on the board bus, not over I2C): the same
    high-pass filter as ``Lis3dh._high_pass`` (HPCF 00: ODR/50), started on the
    field (the driver reads REFERENCE), and any axis past the threshold (INT2_THS
    3 at +-4 g: 96 mg; INT2_CFG 0x2A, OR of the high events)."""

    def __init__(self, threshold_mg: float = 96.0):
        self.threshold_mg = threshold_mg
        self.x_prev: tuple[float, ...] | None = None
        self.y = (0.0, 0.0, 0.0)

    def feed(self, samples: list[list[int]], hz: int) -> bool:
        a = 1 / (1 + 2 * math.pi * (hz / 50) / hz)
        fired = False
        for s in samples:
            x = tuple(float(v) for v in s)
            if self.x_prev is None:
                self.x_prev = x
            self.y = tuple(a * (y + xi - xp) for y, xi, xp in zip(self.y, x, self.x_prev))
            self.x_prev = x
            fired = fired or any(abs(v) > self.threshold_mg for v in self.y)
        return fired
