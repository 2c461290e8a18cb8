# ST7789V TFT panel driver (SPI, 4-line serial interface: the D/CX pin low for
# a command byte, high for its parameters and the pixel data; Sitronix ST7789V
# datasheet v1.0, 8.4.2 "4-line serial interface", 9.1 "System function
# commands"). The round and square watch panels (LILYGO-class 240x240, or
# 240x280 with a 20-row offset into the chip's 240x320 frame memory).
#
# No frame buffer in the heap (240x240x2 bytes is more than the app's whole
# heap): every glyph is drawn into its own small window (CASET, RASET, RAMWR),
# one scaled row of it at a time, from MicroPython's built-in 8x8 font
# (framebuf.FrameBuffer.text, the font in the board's firmware).
import time
import framebuf
from micropython import const

SWRESET = const(0x01)
SLPIN = const(0x10)
SLPOUT = const(0x11)
NORON = const(0x13)
INVON = const(0x21)
DISPOFF = const(0x28)
DISPON = const(0x29)
CASET = const(0x2A)
RASET = const(0x2B)
RAMWR = const(0x2C)
MADCTL = const(0x36)
COLMOD = const(0x3A)
_COLMOD_16BIT = const(0x55)     # 65K colours, RGB 5-6-5, 16 bits a pixel (9.1.32)
_MADCTL_RGB = const(0x00)       # rows and columns in order, RGB (9.1.28)
_RESET_WAIT_MS = const(120)     # SWRESET: 5 ms before a command, 120 ms before SLPOUT (9.1.2)
_SLEEP_WAIT_MS = const(120)     # SLPOUT/SLPIN: 5 ms before a command, 120 ms before the other (9.1.12)
_CMD_WAIT_MS = const(5)
_CHUNK = const(480)             # bytes a write: one row of 240 pixels, and the largest block asked of the heap
_FONT = const(8)                # framebuf's font: 8x8 pixels


def rgb565(r, g, b):
    return (r & 0xF8) << 8 | (g & 0xFC) << 3 | b >> 3


class ST7789:
    def __init__(self, spi, dc, cs=None, bl=None, width=240, height=240, x_off=0, y_off=0):
        self.spi, self.dc, self.cs, self.bl = spi, dc, cs, bl
        self.width, self.height = width, height
        self.x_off, self.y_off = x_off, y_off
        self.on = False
        self._slept_at = time.ticks_ms()
        self._buf = bytearray(_CHUNK)
        self._mv = memoryview(self._buf)
        self._c = bytearray(1)          # a command byte, and a window's 4 parameters:
        self._p = bytearray(4)          # reused, so a glyph asks the heap for nothing
        self._glyph = bytearray(_FONT)  # one character, 1 bit a pixel
        self._fb = framebuf.FrameBuffer(self._glyph, _FONT, _FONT, framebuf.MONO_HLSB)

    def cmd(self, c, data=None):
        if self.cs:
            self.cs(0)
        self.dc(0)
        self._c[0] = c
        self.spi.write(self._c)
        if data:
            self.dc(1)
            self.spi.write(data)
        if self.cs:
            self.cs(1)

    def _data(self, buf):
        if self.cs:
            self.cs(0)
        self.dc(1)
        self.spi.write(buf)
        if self.cs:
            self.cs(1)

    def init(self):
        self.cmd(SWRESET)
        time.sleep_ms(_RESET_WAIT_MS)
        self.cmd(SLPOUT)
        self._slept_at = time.ticks_ms()
        time.sleep_ms(_CMD_WAIT_MS)
        self.cmd(COLMOD, bytes((_COLMOD_16BIT,)))
        self.cmd(MADCTL, bytes((_MADCTL_RGB,)))
        self.cmd(INVON)  # the IPS panels show true colours with the chip's inversion on
        self.cmd(NORON)
        self.cmd(DISPON)
        self.on = True
        if self.bl:
            self.bl(1)

    def _sleep_gap(self):
        # SLPIN and SLPOUT each need 120 ms after the other (9.1.11, 9.1.12).
        wait = _SLEEP_WAIT_MS - time.ticks_diff(time.ticks_ms(), self._slept_at)
        if wait > 0:
            time.sleep_ms(wait)
        self._slept_at = time.ticks_ms()

    def power(self, on):
        if on == self.on:
            return
        self._sleep_gap()
        if on:
            self.cmd(SLPOUT)
            time.sleep_ms(_CMD_WAIT_MS)
            self.cmd(DISPON)
        else:
            if self.bl:
                self.bl(0)
            self.cmd(DISPOFF)
            self.cmd(SLPIN)
        if on and self.bl:
            self.bl(1)
        self.on = on

    def window(self, x, y, w, h):
        # Column then row address, start and end inclusive, each high byte first (9.1.20, 9.1.21).
        x0, y0 = x + self.x_off, y + self.y_off
        x1, y1 = x0 + w - 1, y0 + h - 1
        self._pair(x0, x1)
        self.cmd(CASET, self._p)
        self._pair(y0, y1)
        self.cmd(RASET, self._p)
        self.cmd(RAMWR)

    def _pair(self, start, end):
        # One statement a byte: a 4-target assignment would build a tuple in the heap.
        p = self._p
        p[0] = start >> 8
        p[1] = start & 0xFF
        p[2] = end >> 8
        p[3] = end & 0xFF

    def fill_rect(self, x, y, w, h, colour):
        self.window(x, y, w, h)
        buf = self._buf
        hi, lo = colour >> 8, colour & 0xFF
        for i in range(0, _CHUNK, 2):
            buf[i], buf[i + 1] = hi, lo
        left = 2 * w * h
        while left > 0:
            n = min(left, _CHUNK)
            self._data(buf if n == _CHUNK else self._mv[:n])
            left -= n

    def char(self, ch, x, y, scale, fg, bg):
        # One glyph in its own window: each font row, scaled, is one write of
        # scale rows (8 * scale * 2 * scale bytes: 512 at scale 4).
        self._fb.fill(0)
        self._fb.text(ch, 0, 0, 1)
        side = _FONT * scale
        self.window(x, y, side, side)
        row = 2 * side
        buf = self._buf
        first = self._mv[:row]           # two views for the whole glyph, not two a row
        rows = self._mv[:row * scale]
        for r in range(_FONT):
            bits = self._glyph[r]
            i = 0
            for c in range(_FONT):
                colour = fg if bits & (0x80 >> c) else bg
                hi, lo = colour >> 8, colour & 0xFF
                for _ in range(scale):
                    buf[i], buf[i + 1] = hi, lo
                    i += 2
            for k in range(1, scale):
                buf[k * row:(k + 1) * row] = first
            self._data(rows)

    def text(self, s, x, y, scale, fg, bg):
        step = _FONT * scale
        for ch in s:
            if x + step > self.width:
                break
            self.char(ch, x, y, scale, fg, bg)
            x += step
