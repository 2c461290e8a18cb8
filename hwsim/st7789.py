"""The ST7789V TFT controller, at the level of its SPI wires.

The firmware's driver (``hal/st7789.py``) talks to it through ``machine.SPI``
and ``machine.Pin``: bytes on MOSI, the D/CX pin telling a command byte (low)
from its parameters and pixel data (high), CSX selecting the chip (low). This
model decodes that stream as the chip does (Sitronix ST7789V datasheet v1.0):

* 8.4.2, 4-line serial interface: a byte with D/CX low is a command; the bytes
  after it with D/CX high are its parameters; bytes while CSX is high are not
  the chip's.
* 9.1 commands: SWRESET (0x01) puts every register back to its reset value
  (9.1.2: no command for 5 ms after it, no SLPOUT for 120 ms); SLPIN/SLPOUT
  (0x10/0x11: 5 ms before the next command, 120 ms between the two); NORON
  (0x13); INVOFF/INVON (0x20/0x21); DISPOFF/DISPON (0x28/0x29); CASET (0x2A)
  and RASET (0x2B): start and end, high byte first, start <= end and end
  within the frame memory, else the window is refused and the pixels go
  nowhere; RAMWR (0x2C): pixels from the window's start, left to right, top to
  bottom, wrapping inside the window; MADCTL (0x36): MY, MX, MV and the BGR
  order; COLMOD (0x3A): 0x55 16 bits a pixel (RGB 5-6-5, high byte first),
  0x66 18 bits (three bytes, 6 bits each in the high bits); reset value 0x66.
* A command sent too early (the waits above) is not taken: it is counted in
  ``violations`` (the chip would ignore or garble it), so a driver that skips
  the datasheet's delays fails its test.

Time is the board's: each transfer carries the sender's millisecond tick, so a
busy test machine cannot make a driver's delays look shorter or longer.

The frame memory is 240x320, kept as RGB565; the panel shows a window of it
(240x240 from row 0, or 240x280 from row 20). What the panel shows:
``pixel(x, y)``, black while asleep or off, and with colours inverted unless
INVON (the IPS panels of these watches are built to need the inversion).
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

GRAM_W, GRAM_H = 240, 320
SWRESET, SLPIN, SLPOUT, NORON, INVOFF, INVON = 0x01, 0x10, 0x11, 0x13, 0x20, 0x21
DISPOFF, DISPON, CASET, RASET, RAMWR, MADCTL, COLMOD = 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x36, 0x3A
PARAMS = {CASET: 4, RASET: 4, MADCTL: 1, COLMOD: 1}
CMD_WAIT_MS = 5
SLEEP_WAIT_MS = 120


class St7789:
    def __init__(self, width: int = 240, height: int = 240, x_off: int = 0, y_off: int = 0,
                 needs_inversion: bool = True):
        self.width, self.height, self.x_off, self.y_off = width, height, x_off, y_off
        self.needs_inversion = needs_inversion
        self.ram = bytearray(GRAM_W * GRAM_H * 2)
        self.violations: list[str] = []
        self.commands: list[int] = []
        self.pixels_written = 0
        self.refused_pixels = 0
        self._reset(at=-10_000)

    def _reset(self, at: int) -> None:
        # Reset values: 9.1.2 and the "Reset table" of 7.5 (sleep in, display off).
        self.asleep, self.display_on, self.inverted = True, False, False
        self.colmod, self.madctl = 0x66, 0x00
        self.xs, self.xe, self.ys, self.ye = 0, GRAM_W - 1, 0, GRAM_H - 1
        self.reset_at, self.sleep_changed_at, self.last_cmd_at = at, at - 10_000, at
        self.busy_until = at
        self._cmd: int | None = None
        self._params = bytearray()
        self._pixel = bytearray()
        self._col = self._row = 0

    # --- the wires ------------------------------------------------------------------
    def write(self, data: bytes, dc: int, cs: int, t_ms: int) -> None:
        if cs:
            return  # not selected: the bytes are another chip's
        if dc == 0:
            for c in data:
                self._command(c, t_ms)
        else:
            self._data(data)

    def _command(self, c: int, t: int) -> None:
        if t < self.busy_until:
            self.violations.append(f"0x{c:02X} {self.busy_until - t} ms too early")
            self._cmd = None
            return
        if c == SLPOUT and t - self.reset_at < SLEEP_WAIT_MS:
            self.violations.append(f"SLPOUT {SLEEP_WAIT_MS - (t - self.reset_at)} ms after SWRESET too early")
            self._cmd = None
            return
        if c in (SLPIN, SLPOUT) and t - self.sleep_changed_at < SLEEP_WAIT_MS:
            self.violations.append(f"0x{c:02X} within 120 ms of the last SLPIN/SLPOUT")
            self._cmd = None
            return
        self.commands.append(c)
        self._cmd, self._params, self._pixel = c, bytearray(), bytearray()
        if c == SWRESET:
            self._reset(at=t)
            self.busy_until = t + CMD_WAIT_MS
        elif c in (SLPIN, SLPOUT):
            self.asleep = c == SLPIN
            self.sleep_changed_at = t
            self.busy_until = t + CMD_WAIT_MS
        elif c in (INVON, INVOFF):
            self.inverted = c == INVON
        elif c in (DISPON, DISPOFF):
            self.display_on = c == DISPON
        elif c == RAMWR:
            self._col, self._row = self.xs, self.ys

    def _data(self, data: bytes) -> None:
        c = self._cmd
        if c in PARAMS:
            self._params += data
            if len(self._params) >= PARAMS[c]:
                self._apply(c, bytes(self._params[:PARAMS[c]]))
                self._cmd = None
        elif c == RAMWR:
            self._pixels(data)

    def _apply(self, c: int, p: bytes) -> None:
        if c == CASET:
            self.xs, self.xe = struct.unpack(">HH", p)
        elif c == RASET:
            self.ys, self.ye = struct.unpack(">HH", p)
        elif c == MADCTL:
            self.madctl = p[0]
        elif c == COLMOD:
            self.colmod = p[0]

    # --- frame memory ---------------------------------------------------------------
    def _limits(self) -> tuple[int, int]:
        # MV exchanges rows and columns (9.1.28): the column range is then 0..319.
        return (GRAM_H, GRAM_W) if self.madctl & 0x20 else (GRAM_W, GRAM_H)

    def window_ok(self) -> bool:
        cols, rows = self._limits()
        return self.xs <= self.xe < cols and self.ys <= self.ye < rows

    def _pixels(self, data: bytes) -> None:
        per = 2 if self.colmod & 0x07 == 0x05 else 3 if self.colmod & 0x07 == 0x06 else 0
        if not per:
            self.refused_pixels += len(data)
            return
        buf = self._pixel + data
        n = len(buf) // per
        self._pixel = bytearray(buf[n * per:])
        ok = self.window_ok()
        for k in range(n):
            px = buf[k * per:(k + 1) * per]
            if per == 2:
                value = px[0] << 8 | px[1]
            else:  # 6 bits a channel in the high bits (8.8.x, 18-bit/pixel)
                value = (px[0] >> 3) << 11 | (px[1] >> 2) << 5 | px[2] >> 3
            if self.madctl & 0x08:  # BGR: red and blue exchanged on the way in
                value = (value & 0x1F) << 11 | (value & 0x07E0) | value >> 11
            if not ok:
                self.refused_pixels += 1
                continue
            self._store(self._col, self._row, value)
            self.pixels_written += 1
            self._col += 1
            if self._col > self.xe:
                self._col = self.xs
                self._row += 1
                if self._row > self.ye:
                    self._row = self.ys

    def _store(self, col: int, row: int, value: int) -> None:
        cols, rows = self._limits()
        if self.madctl & 0x40:
            col = cols - 1 - col
        if self.madctl & 0x80:
            row = rows - 1 - row
        if self.madctl & 0x20:
            col, row = row, col
        i = 2 * (row * GRAM_W + col)
        self.ram[i], self.ram[i + 1] = value >> 8, value & 0xFF

    # --- what the panel shows ------------------------------------------------------------
    def pixel(self, x: int, y: int) -> int:
        """RGB565 of the panel's pixel (x, y): black while asleep or off."""
        if self.asleep or not self.display_on:
            return 0
        i = 2 * ((y + self.y_off) * GRAM_W + x + self.x_off)
        value = self.ram[i] << 8 | self.ram[i + 1]
        return value if self.inverted == self.needs_inversion else value ^ 0xFFFF

    def region(self, x: int, y: int, w: int, h: int) -> list[list[int]]:
        return [[self.pixel(x + i, y + j) for i in range(w)] for j in range(h)]

    def png(self, path: Path) -> Path:
        """What the panel shows, as an 8-bit RGB PNG (zlib and the PNG chunk layout, RFC 2083)."""
        rows = bytearray()
        for y in range(self.height):
            rows.append(0)
            for x in range(self.width):
                v = self.pixel(x, y)
                rows += bytes(((v >> 11) * 255 // 31, (v >> 5 & 63) * 255 // 63, (v & 31) * 255 // 31))

        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(rows)))
                         + chunk(b"IEND", b""))
        return path
