"""The Bosch BMP390 barometer, at register level, on the board's I2C bus (an optional part).

The firmware's driver (``hal/bmp390.py``) reads and writes it through ``machine.I2C``'s
``readfrom_mem`` / ``writeto_mem``. From the BMP390 datasheet (Bosch Sensortec
BST-BMP390-DS002, rev 1.7, March 2021; the BMP388's BST-BMP388-DS001 has the same
register map, FIFO and compensation):

* Memory map (section 4): CHIP_ID 0x00 (0x60), REV_ID 0x01, ERR_REG 0x02 (fatal_err,
  cmd_err, conf_err), STATUS 0x03 (cmd_rdy bit 4, drdy_press bit 5, drdy_temp bit 6;
  the drdy bits clear when the DATA registers are read), DATA_0..5 0x04-0x09 (pressure
  then temperature, 24 bits each, XLSB first), SENSORTIME 0x0C-0x0E, EVENT 0x10
  (por_detected, cleared on read), INT_STATUS 0x11 (fwm_int, ffull_int, drdy; cleared
  on read), FIFO_LENGTH 0x12-0x13 (9 bits), FIFO_DATA 0x14, FIFO_WTM 0x15-0x16,
  FIFO_CONFIG_1 0x17 (fifo_mode, fifo_stop_on_full, fifo_time_en, fifo_press_en,
  fifo_temp_en), FIFO_CONFIG_2 0x18 (fifo_subsampling 2:0, data_select 4:3), INT_CTRL
  0x19, IF_CONF 0x1A, PWR_CTRL 0x1B (press_en, temp_en, mode 5:4: 00 sleep, 01/10
  forced, 11 normal), OSR 0x1C (osr_p 2:0, osr_t 5:3), ODR 0x1D (odr_sel: 200 Hz / 2^n),
  CONFIG 0x1F (iir_filter 3:1: coefficient 0, 1, 3, 7 ... 127), NVM_PAR_T1..P11
  0x31-0x45, CMD 0x7E (0xB6 soft reset, 0xB0 fifo_flush).
* I2C (5.2): a read auto-increments the register address, except on FIFO_DATA, where a
  burst reads the FIFO on; a multi-byte write is register/data pairs (the first data
  byte to the addressed register, then address, data, address, data...).
* FIFO (3.6): 512 bytes of frames. A pressure+temperature frame is the header 0x94 and
  the temperature then the pressure, 3 bytes each (0x90 temperature only, 0x84 pressure
  only); 0x48 + 1 byte: the configuration changed; 0x44 + 1 byte: a configuration error;
  0xA0 + 3 bytes: the sensortime, given once after the last frame when fifo_time_en is
  set; reading past the end gives empty frames, 0x80 0x00. Full, it stops taking frames
  (fifo_stop_on_full) or drops the oldest. FIFO_LENGTH counts the frames' bytes (not the
  sensortime frame). data_select 01 stores IIR-filtered data, 00 unfiltered;
  subsampling keeps one measurement in 2^n.
* Measurement time (3.9.2): T_conv = 234 us + press_en (392 us + 2^osr_p 2020 us) +
  temp_en (163 us + 2^osr_t 2020 us). In normal mode a T_conv longer than the ODR's
  period is an invalid configuration: conf_err is set and the part stays asleep (3.3.3);
  a BMP388 on Bosch's forum ("BMP388 OSR OVERSAMPLING", 2024) shows just that: osr_p x2
  at the default 200 Hz left PWR_CTRL at 0x03 (sleep) and ERR_REG at 0x04.
* IIR filter (3.4.3): out = (out' * c + in) / (c + 1) on the ADC values, the first
  measurement after a reset of the filter taken as it is.
* Compensation (section 8, the floating-point form): the coefficients from the NVM
  (PAR_T1 = NVM_PAR_T1 * 2^8, PAR_T2 = NVM_PAR_T2 / 2^30, ... PAR_P11 = NVM_PAR_P11 /
  2^65) and the polynomials in the raw temperature and pressure. The model turns the
  world's true pressure and temperature into the raw values the part would give for its
  own coefficients, by solving those polynomials (Newton's method), so any driver that
  compensates as the datasheet says reads the truth back.

Figures and what is assumed (docs/hwsim.md):
* Noise. The datasheet's headline is 0.02 Pa RMS at its lowest (highest oversampling,
  x32, and the strongest IIR filter, coefficient 127, which leaves 1/sqrt(255) of white
  noise). ASSUMPTION: noise falls as 1/sqrt(oversampling), so 0.02 * sqrt(255) * sqrt(32)
  = 1.8 Pa RMS for one measurement at x1, 1.28 Pa at x2; the IIR filter then acts on it
  as on the part. Temperature noise: 0.005 degC RMS (assumed).
* Absolute accuracy is +-50 Pa typical (datasheet, 1.1): each part gets a fixed offset
  drawn from its seed within +-30 Pa (assumed spread).
* Current: 3.2 uA at 1 Hz with x1/x1 (datasheet, page 1) and 1.4 uA asleep (Table 1)
  give 1.8 uC per x1/x1 measurement of 4.83 ms (T_conv above): 373 uA while measuring.
  Normal mode draws 1.4 uA + ODR * T_conv * 373 uA (standby between measurements
  assumed equal to sleep). Charged to hwsim's meter as part "baro".
* Sensortime ticks at 25.6 kHz (39.0625 us), assumed.
* The calibration block is a real BMP388's NVM as published in elixir-sensors/bmp3xx's
  tests (the BMP390 keeps the same layout and scaling); the same raw frame gives
  100876.006 Pa / 30.4993 degC there, a check of the compensation in tests/hwsim.
"""
from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable

ADDR = 0x77            # SDO high; 0x76 with SDO low
CHIP_ID, REV_ID = 0x60, 0x01
ERR_REG, STATUS, DATA_0, SENSORTIME_0, EVENT, INT_STATUS = 0x02, 0x03, 0x04, 0x0C, 0x10, 0x11
FIFO_LENGTH_0, FIFO_DATA, FIFO_WTM_0, FIFO_CONFIG_1, FIFO_CONFIG_2 = 0x12, 0x14, 0x15, 0x17, 0x18
INT_CTRL, IF_CONF, PWR_CTRL, OSR, ODR, CONFIG, NVM_PAR_T1, CMD = 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1F, 0x31, 0x7E
FIFO_BYTES = 512
HEADER_PT, HEADER_T, HEADER_P, HEADER_TIME, HEADER_EMPTY = 0x94, 0x90, 0x84, 0xA0, 0x80
HEADER_CONFIG_CHANGE, HEADER_CONFIG_ERROR = 0x48, 0x44
CMD_SOFT_RESET, CMD_FIFO_FLUSH = 0xB6, 0xB0
WRITABLE = {FIFO_WTM_0, FIFO_WTM_0 + 1, FIFO_CONFIG_1, FIFO_CONFIG_2, INT_CTRL, IF_CONF, PWR_CTRL, OSR, ODR,
            CONFIG, CMD}
# Reset values (memory map, section 4): what a soft reset or power-on leaves.
RESET_VALUES = {STATUS: 0x10, FIFO_WTM_0: 0x01, FIFO_CONFIG_1: 0x02, FIFO_CONFIG_2: 0x02, INT_CTRL: 0x02,
                OSR: 0x02}
# elixir-sensors/bmp3xx test/bmp3xx/bmp388/calibration_test.exs: a real part's NVM_PAR_T1..P11.
REAL_NVM = bytes.fromhex("236B5849F65CFFCEF42300EA636E79F3F6AA4312C4")

SENSORTIME_HZ = 25600.0
NOISE_PA_X1 = 0.02 * math.sqrt(255) * math.sqrt(32)   # 1.8 Pa: see the module's notes
NOISE_DEGC = 0.005
OFFSET_SPREAD_PA = 30.0
SLEEP_MA = 0.0014                     # Table 1: 1.4 uA
MEASURING_MA = (0.0032 - SLEEP_MA) / 4829e-6   # 1.8 uC per 4.829 ms x1/x1 measurement: 0.373 mA


def conversion_s(osr_p: int, osr_t: int, press: bool = True, temp: bool = True) -> float:
    """T_conv (datasheet 3.9.2), osr_p / osr_t as register codes (0: x1 ... 5: x32)."""
    us = 234.0 + (392 + (1 << osr_p) * 2020 if press else 0) + (163 + (1 << osr_t) * 2020 if temp else 0)
    return us / 1e6


def normal_mode_ma(osr_p: int, osr_t: int, odr_hz: float) -> float:
    return SLEEP_MA + odr_hz * conversion_s(osr_p, osr_t) * MEASURING_MA


class Calibration:
    """The NVM block, scaled as the datasheet's section 8 says, and its float compensation."""

    def __init__(self, nvm: bytes):
        t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11 = struct.unpack("<HHbhhbbHHbbhbb", nvm)
        self.t = (t1 * 2.0 ** 8, t2 / 2.0 ** 30, t3 / 2.0 ** 48)
        self.p = ((p1 - 2 ** 14) / 2.0 ** 20, (p2 - 2 ** 14) / 2.0 ** 29, p3 / 2.0 ** 32, p4 / 2.0 ** 37,
                  p5 * 2.0 ** 3, p6 / 2.0 ** 6, p7 / 2.0 ** 8, p8 / 2.0 ** 15, p9 / 2.0 ** 48, p10 / 2.0 ** 48,
                  p11 / 2.0 ** 65)

    def temperature(self, raw_t: float) -> float:
        t1, t2, t3 = self.t
        d = raw_t - t1
        return d * t2 + d * d * t3

    def pressure(self, raw_p: float, t: float) -> float:
        p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11 = self.p
        out1 = p5 + p6 * t + p7 * t * t + p8 * t ** 3
        out2 = raw_p * (p1 + p2 * t + p3 * t * t + p4 * t ** 3)
        return out1 + out2 + raw_p * raw_p * (p9 + p10 * t) + raw_p ** 3 * p11

    def raw_temperature(self, degc: float) -> float:
        """The raw value whose compensation is ``degc`` (Newton on the quadratic)."""
        t1, t2, t3 = self.t
        d = degc / t2
        for _ in range(8):
            d -= (d * t2 + d * d * t3 - degc) / (t2 + 2 * d * t3)
        return t1 + d

    def raw_pressure(self, pa: float, t: float) -> float:
        raw = 8e6
        for _ in range(12):
            f = self.pressure(raw, t) - pa
            slope = (self.pressure(raw + 1.0, t) - self.pressure(raw - 1.0, t)) / 2.0
            raw -= f / slope
            if abs(f) < 1e-6:
                break
        return raw


Air = Callable[[float], tuple[float, float]]  # scenario seconds -> (pressure Pa, temperature degC) at the part


class Bmp390:
    def __init__(self, air: Air, now: Callable[[], float], seed: int = 7, nvm: bytes = REAL_NVM,
                 meter=None):
        self.air, self.now = air, now
        self.nvm = bytes(nvm)
        self.cal = Calibration(self.nvm)
        self.rng = random.Random(seed)
        self.offset_pa = self.rng.uniform(-OFFSET_SPREAD_PA, OFFSET_SPREAD_PA)
        self.meter = meter
        self.reads = self.writes = 0
        self.frames_made = 0          # every measurement the part took (tests)
        self.fifo_bursts: list[int] = []  # the bytes of each FIFO_DATA read (tests)
        self.frames_dropped = 0       # the oldest frames a full FIFO let go
        self.config_change_frames = 0
        self.unmodelled: list[str] = []
        self.log: list[tuple[float, int, int]] = []  # (time, raw pressure, raw temperature) of each measurement
        self.powered_at = now()
        self._reset()

    # --- state ---------------------------------------------------------------------------
    def _reset(self) -> None:
        self.regs = bytearray(0x80)
        self.regs[0x00], self.regs[0x01] = CHIP_ID, REV_ID
        for reg, value in RESET_VALUES.items():
            self.regs[reg] = value
        self.regs[NVM_PAR_T1:NVM_PAR_T1 + len(self.nvm)] = self.nvm
        self.fifo: list[bytes] = []
        self.time_given = False       # the sensortime frame after the last frame, once
        self.on_at: float | None = None
        self.made = 0                 # measurements since on_at
        self.iir: tuple[float, float] | None = None
        self.out = (0x800000, 0x800000)
        self.drdy = 0
        self.event = 0x01             # por_detected
        self.int_status = 0
        self.forced_due: float | None = None
        self._charge()

    def mode(self) -> int:
        return (self.regs[PWR_CTRL] >> 4) & 3

    def odr_hz(self) -> float:
        return 200.0 / (1 << min(17, self.regs[ODR] & 0x1F))

    def osr(self) -> tuple[int, int]:
        return min(5, self.regs[OSR] & 7), min(5, (self.regs[OSR] >> 3) & 7)

    def iir_coefficient(self) -> int:
        return (1 << ((self.regs[CONFIG] >> 1) & 7)) - 1

    def fifo_on(self) -> bool:
        return bool(self.regs[FIFO_CONFIG_1] & 0x01)

    def fifo_bytes(self) -> int:
        return sum(len(f) for f in self.fifo)

    def _charge(self) -> None:
        if self.meter is None:
            return
        if self.mode() == 3:
            osr_p, osr_t = self.osr()
            self.meter.set_current("baro", "normal", normal_mode_ma(osr_p, osr_t, self.odr_hz()))
            self.meter.set("baro", "normal")
        else:
            self.meter.set("baro", "sleep")

    # --- measurements ----------------------------------------------------------------------
    def _measure(self, t: float) -> tuple[tuple[int, int], tuple[int, int]]:
        """One measurement at scenario time t: raw (pressure, temperature), IIR-filtered."""
        pa, degc = self.air(t)
        osr_p, _ = self.osr()
        pa += self.offset_pa + self.rng.gauss(0.0, NOISE_PA_X1 / math.sqrt(1 << osr_p))
        degc += self.rng.gauss(0.0, NOISE_DEGC)
        raw_t = self.cal.raw_temperature(degc)
        raw_p = self.cal.raw_pressure(pa, degc)
        c = self.iir_coefficient()
        if self.iir is None or c == 0:
            self.iir = (raw_p, raw_t)
        else:
            self.iir = ((self.iir[0] * c + raw_p) / (c + 1), (self.iir[1] * c + raw_t) / (c + 1))
        self.frames_made += 1
        filtered = (int(round(self.iir[0])), int(round(self.iir[1])))
        unfiltered = (int(round(raw_p)), int(round(raw_t)))
        self.log.append((t, filtered[0], filtered[1]))
        del self.log[:-4096]
        return filtered, unfiltered

    def advance(self) -> None:
        """Takes the measurements due by now (normal mode at the ODR; a forced one)."""
        now = self.now()
        if self.forced_due is not None and now >= self.forced_due:
            filtered, _ = self._measure(self.forced_due)
            self.out, self.drdy = filtered, 0x60
            self.forced_due = None
            self.regs[PWR_CTRL] &= 0x0F  # back to sleep (3.3.2)
            self._charge()
        if self.mode() != 3 or self.on_at is None:
            return
        hz = self.odr_hz()
        due = int((now - self.on_at) * hz)
        # Hours of deep sleep are thousands of measurements: only the last FIFO-full and the
        # IIR filter's memory before them can still be seen; the rest is skipped.
        keep = FIFO_BYTES // 7 + 8 * (self.iir_coefficient() + 1)
        if due - self.made > keep:
            self.frames_made += due - keep - self.made
            self.made = due - keep
            self.iir = None
        sub = 1 << (self.regs[FIFO_CONFIG_2] & 7)
        while self.made < due:
            self.made += 1
            filtered, unfiltered = self._measure(self.on_at + self.made / hz)
            self.out, self.drdy = filtered, 0x60
            self.int_status |= 0x08
            if self.fifo_on() and self.made % sub == 0:
                p, t = filtered if (self.regs[FIFO_CONFIG_2] >> 3) & 3 == 1 else unfiltered
                self._push(self._frame(p, t))

    def _frame(self, raw_p: int, raw_t: int) -> bytes:
        press, temp = bool(self.regs[FIFO_CONFIG_1] & 0x08), bool(self.regs[FIFO_CONFIG_1] & 0x10)
        if press and temp:
            return bytes((HEADER_PT,)) + raw_t.to_bytes(3, "little") + raw_p.to_bytes(3, "little")
        if temp:
            return bytes((HEADER_T,)) + raw_t.to_bytes(3, "little")
        if press:
            return bytes((HEADER_P,)) + raw_p.to_bytes(3, "little")
        return b""

    def _push(self, frame: bytes) -> None:
        if not frame:
            return
        while self.fifo_bytes() + len(frame) > FIFO_BYTES:
            if self.regs[FIFO_CONFIG_1] & 0x02:
                self.int_status |= 0x02
                return        # stop on full: the new frame is lost
            self.fifo.pop(0)  # the oldest goes
            self.frames_dropped += 1
        self.fifo.append(frame)
        self.time_given = False
        n = self.fifo_bytes()
        if n >= self._watermark():
            self.int_status |= 0x01
        if n + len(frame) > FIFO_BYTES:
            self.int_status |= 0x02

    def _watermark(self) -> int:
        return (self.regs[FIFO_WTM_0] | (self.regs[FIFO_WTM_0 + 1] & 1) << 8) or 1

    def sensortime(self) -> int:
        return int((self.now() - self.powered_at) * SENSORTIME_HZ) & 0xFFFFFF

    # --- registers ----------------------------------------------------------------------------
    def read(self, reg: int, n: int) -> bytes:
        self.advance()
        self.reads += 1
        if reg == FIFO_DATA:
            self.fifo_bursts.append(n)
            return self._read_fifo(n)
        out = bytearray()
        for r in range(reg, reg + n):
            out.append(self._read_one(r & 0x7F))
        return bytes(out)

    def _read_fifo(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            if self.fifo:
                out += self.fifo.pop(0)
            elif self.regs[FIFO_CONFIG_1] & 0x04 and not self.time_given:
                self.time_given = True
                out += bytes((HEADER_TIME,)) + self.sensortime().to_bytes(3, "little")
            else:
                out += bytes((HEADER_EMPTY, 0x00))
        if len(out) > n:
            # A frame read only in part: the rest is lost with it (the driver reads whole frames).
            self.unmodelled.append("partial FIFO frame")
        return bytes(out[:n])

    def _read_one(self, r: int) -> int:
        if DATA_0 <= r <= DATA_0 + 5:
            self.drdy = 0
            p, t = self.out
            value = p if r < DATA_0 + 3 else t
            return (value >> (8 * ((r - DATA_0) % 3))) & 0xFF
        if r == STATUS:
            busy = self.forced_due is not None
            return 0x10 * (not busy) | self.drdy
        if SENSORTIME_0 <= r <= SENSORTIME_0 + 2:
            return (self.sensortime() >> (8 * (r - SENSORTIME_0))) & 0xFF
        if r == EVENT:
            value, self.event = self.event, 0
            return value
        if r == INT_STATUS:
            value, self.int_status = self.int_status, 0
            return value
        if r == FIFO_LENGTH_0:
            return self.fifo_bytes() & 0xFF
        if r == FIFO_LENGTH_0 + 1:
            return self.fifo_bytes() >> 8
        return self.regs[r]

    def write(self, reg: int, data: bytes) -> None:
        """A write: the first byte to ``reg``, then (address, data) pairs (5.2)."""
        self.advance()
        self.writes += 1
        pairs = [(reg, data[0])] if data else []
        rest = data[1:]
        pairs += [(rest[i], rest[i + 1]) for i in range(0, len(rest) - 1, 2)]
        for r, value in pairs:
            self._write_one(r & 0x7F, value)

    def _write_one(self, r: int, value: int) -> None:
        if r not in WRITABLE:
            self.unmodelled.append(f"write to read-only 0x{r:02X}")
            return
        if r == CMD:
            if value == CMD_SOFT_RESET:
                self._reset()
                self.event = 0x01
            elif value == CMD_FIFO_FLUSH:
                self.fifo = []
            else:
                self.regs[ERR_REG] |= 0x02  # cmd_err
            return
        measuring_config = r in (OSR, ODR, CONFIG, FIFO_CONFIG_1, FIFO_CONFIG_2)
        if r == CONFIG:
            self.iir = None  # a write to the filter resets it (3.4.3)
        if r == PWR_CTRL:
            self._power(value)
            return
        changed = self.regs[r] != value
        self.regs[r] = value
        if measuring_config and changed and self.fifo_on() and self.fifo:
            self._push(bytes((HEADER_CONFIG_CHANGE, 0x00)))
            self.config_change_frames += 1
        if r in (OSR, ODR):
            self._charge()

    def _power(self, value: int) -> None:
        mode = (value >> 4) & 3
        osr_p, osr_t = self.osr()
        if mode == 3 and conversion_s(osr_p, osr_t, bool(value & 1), bool(value & 2)) > 1 / self.odr_hz():
            self.regs[ERR_REG] |= 0x04            # conf_err: the part stays in sleep mode
            self.regs[PWR_CTRL] = value & 0x03
            self._charge()
            return
        was = self.mode()
        self.regs[PWR_CTRL] = value & 0x33
        if mode == 3 and was != 3:
            self.on_at, self.made = self.now(), 0
        elif mode != 3:
            self.on_at = None
        if mode in (1, 2):
            self.forced_due = self.now() + conversion_s(osr_p, osr_t, bool(value & 1), bool(value & 2))
        self._charge()


class OnTheWires:
    """The part on the bench's wires (hwsim/wires.py): each transfer carries the board's
    millisecond tick, which is the part's clock there (run ``speed`` times faster, as
    hwsim runs a scenario, so a test need not wait out a FIFO's 12 s)."""

    def __init__(self, part_factory: Callable[[Callable[[], float]], Bmp390], speed: float = 1.0):
        self.t_ms = 0
        self.speed = speed
        self.part = part_factory(lambda: self.t_ms * self.speed / 1000.0)

    def read(self, reg: int, n: int, t_ms: int) -> bytes:
        self.t_ms = max(self.t_ms, t_ms)
        return self.part.read(reg, n)

    def write(self, reg: int, data: bytes, t_ms: int) -> None:
        self.t_ms = max(self.t_ms, t_ms)
        self.part.write(reg, data)


def isa_pressure_pa(altitude_m: float, sea_level_pa: float = 101325.0) -> float:
    """The ICAO standard atmosphere's pressure at an altitude in its troposphere (ISO 2533):
    p = p0 (1 - L h / T0) ^ (g M / (R L)), L = 0.0065 K/m, T0 = 288.15 K, exponent 5.25588."""
    return sea_level_pa * (1.0 - 0.0065 * altitude_m / 288.15) ** 5.25588
