"""The board's I2C bus, at register level, and the MAX30102 pulse oximeter on it.

The firmware's own driver (``hal/max30102.py``) runs unchanged against this:
``hal/sim.py`` offers ``machine.I2C``'s ``readfrom_mem`` / ``writeto_mem`` and
carries each transfer here as one line over loopback TCP:

    R <addr> <reg> <n>      ->  <hex bytes> | NACK
    W <addr> <reg> <hex>    ->  OK | NACK

A device that is not on the bus NACKs (the driver sees OSError, as on the board).

The MAX30102 model keeps the registers the driver uses (mode, FIFO and SpO2
configuration, LED currents, FIFO pointers, overflow counter, part id) and a
32-sample FIFO filled at the configured rate (samples per second divided by the
in-chip averaging) in scenario time, with rollover or loss when full. Each
sample is red and infrared, 18 bits, 3 bytes each. With skin on the sensor the
infrared is a PPG: a large steady level, a breathing drift, and per heartbeat a
systolic peak and a smaller dicrotic wave, at the world's heart rate (which a
fall raises), plus seeded noise. Without contact only a little ambient light
comes back.
"""
from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable

from hwsim.energy import Meter
from hwsim.events import Recorder
from hwsim.world import World

MAX30102_ADDR = 0x57
FIFO_DEPTH = 32
SPS = (50, 100, 200, 400, 800, 1000, 1600, 3200)
AVERAGING = (1, 2, 4, 8, 16, 32, 32, 32)
FULL_SCALE = (1 << 18) - 1


class Max30102:
    PART_ID, REV_ID = 0x15, 0x03

    def __init__(self, world: World, now: Callable[[], float], seed: int = 1, meter: Meter | None = None):
        self.world, self.now = world, now
        self.meter = meter
        self.rng = random.Random(seed)
        self.reads = 0
        self.samples_made = 0
        self._reset()

    def _reset(self) -> None:
        self.regs = bytearray(256)
        self.regs[0xFE], self.regs[0xFF] = self.REV_ID, self.PART_ID
        self.fifo: list[tuple[int, int]] = []
        self.wr = self.rd = self.ovf = 0
        self._on_at: float | None = None
        self._made = 0
        self._phase = 0.0
        self._last_t: float | None = None

    # --- configuration --------------------------------------------------------------
    def mode(self) -> int:
        return self.regs[0x09] & 0x07

    def active(self) -> bool:
        return not self.regs[0x09] & 0x80 and self.mode() in (2, 3, 7)

    def rate_hz(self) -> float:
        return SPS[(self.regs[0x0A] >> 2) & 7] / AVERAGING[self.regs[0x08] >> 5]

    def _bytes_per_sample(self) -> int:
        return 3 if self.mode() == 2 else 6

    # --- the light that comes back ------------------------------------------------------
    def _sample(self, t: float) -> tuple[int, int]:
        led = max(1, self.regs[0x0D]) / 0x24  # IR LED current, relative to 7 mA
        if not self.world.skin_contact:
            ir = 1800 * led + self.rng.gauss(0, 40)
            return self._clamp(ir * 0.8), self._clamp(ir)
        hr = self.world.heart_rate()
        if self._last_t is not None:
            self._phase = (self._phase + (t - self._last_t) * hr / 60.0) % 1.0
        self._last_t = t
        tau = self._phase * 60.0 / hr  # seconds since this beat began: the wave keeps its width
        beat = math.exp(-((tau - 0.12) / 0.08) ** 2) + 0.25 * math.exp(-((tau - 0.36) / 0.09) ** 2)
        breath = math.sin(2 * math.pi * t / 4.0)
        ir = led * (120000 + 400 * breath + 1500 * beat) + self.rng.gauss(0, 60)
        red = led * (90000 + 300 * breath + 900 * beat) + self.rng.gauss(0, 60)
        return self._clamp(red), self._clamp(ir)

    @staticmethod
    def _clamp(v: float) -> int:
        return max(0, min(FULL_SCALE, int(v)))

    def _advance(self) -> None:
        """Fills the FIFO with the samples taken since the last look."""
        if not self.active() or self._on_at is None:
            return
        rate = self.rate_hz()
        due = int((self.now() - self._on_at) * rate)
        while self._made < due:
            self._made += 1
            self.samples_made += 1
            sample = self._sample(self._on_at + self._made / rate)
            if len(self.fifo) >= FIFO_DEPTH:
                self.ovf = min(0x1F, self.ovf + 1)
                if not self.regs[0x08] & 0x10:
                    continue  # no rollover: the new sample is lost
                self.fifo.pop(0)
                self.rd = (self.rd + 1) & 0x1F
            self.fifo.append(sample)
            self.wr = (self.wr + 1) & 0x1F

    # --- registers --------------------------------------------------------------------
    def read(self, reg: int, n: int) -> bytes:
        self._advance()
        self.reads += 1
        if reg == 0x07:
            out = bytearray()
            per = self._bytes_per_sample()
            while len(out) < n:
                if self.fifo:
                    red, ir = self.fifo.pop(0)
                    self.rd = (self.rd + 1) & 0x1F
                    self.ovf = 0
                else:
                    red = ir = 0
                chunk = red.to_bytes(3, "big") + (ir.to_bytes(3, "big") if per == 6 else b"")
                out += chunk
            return bytes(out[:n])
        out = bytearray()
        for r in range(reg, reg + n):  # the register pointer auto-increments
            r &= 0xFF
            out.append({0x04: self.wr, 0x05: self.ovf, 0x06: self.rd}.get(r, self.regs[r]))
        return bytes(out)

    def write(self, reg: int, data: bytes) -> None:
        self._advance()
        for i, value in enumerate(data):
            r = (reg + i) & 0xFF
            if r in (0xFE, 0xFF):
                continue  # read-only
            if r == 0x09:
                if value & 0x40:
                    self._reset()
                    if self.meter is not None:
                        self.meter.set("ppg", "off")
                    continue
                was = self.active()
                self.regs[r] = value & 0x87
                if self.active() and not was:
                    self._on_at, self._made = self.now(), 0
                if self.meter is not None:
                    self.meter.set("ppg", "on" if self.active() else "off")
                continue
            if r in (0x04, 0x05, 0x06):
                self.fifo, self.wr, self.ovf, self.rd = [], 0, 0, 0
                continue
            self.regs[r] = value


class I2CBus:
    def __init__(self, rec: Recorder, devices: dict[int, object]):
        self.rec = rec
        self.devices = devices
        self.transfers = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write((self.transfer(line.decode(errors="replace")) + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def transfer(self, line: str) -> str:
        words = line.split()
        try:
            op, addr, reg = words[0], int(words[1]), int(words[2])
            dev = self.devices.get(addr)
            if dev is None:
                return "NACK"
            self.transfers += 1
            if op == "R":
                return dev.read(reg, int(words[3])).hex()
            if op == "W":
                dev.write(reg, bytes.fromhex(words[3]))
                return "OK"
        except (IndexError, ValueError):
            pass
        return "NACK"
