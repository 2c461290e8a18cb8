# MAX30102 / MAX30101 pulse-oximeter driver (I2C 0x57): heart rate from the
# infrared PPG. Takes any I2C object with readfrom_mem / writeto_mem, so the
# board's machine.I2C and the simulator's bus run the same code.
#
# A reading: wake the part, let it sample for _MEASURE_MS (100 samples/s,
# averaged by 4 in the chip: 25 Hz into its 32-deep FIFO, drained every
# _POLL_MS), power it down again (the LEDs are the cost), then find the beats:
# the slow baseline removed (a one-second moving average), the systolic peaks
# above half the largest swing, at least _REFRACTORY_S apart. Too little
# infrared light back means nothing on the skin: no reading, never a guess.

from array import array
from micropython import const

_ADDR = const(0x57)
_REG_INT1 = const(0x00)
_REG_FIFO_WR = const(0x04)
_REG_OVF = const(0x05)
_REG_FIFO_RD = const(0x06)
_REG_FIFO_DATA = const(0x07)
_REG_FIFO_CONFIG = const(0x08)
_REG_MODE = const(0x09)
_REG_SPO2_CONFIG = const(0x0A)
_REG_LED1 = const(0x0C)  # red
_REG_LED2 = const(0x0D)  # infrared
_REG_PART_ID = const(0xFF)
_PART_ID = const(0x15)

_MODE_SPO2 = const(0x03)  # red + IR, 6 bytes a sample
_MODE_RESET = const(0x40)
_MODE_SHDN = const(0x80)
_FIFO_AVG4_ROLL = const(0x50)  # SMP_AVE = 4, FIFO_ROLLOVER_EN
_SPO2_4096NA_100SPS_411US = const(0x27)
_LED_7MA = const(0x24)
_RATE_HZ = const(25)  # 100 sps / 4
_MEASURE_MS = const(6000)
_SKIN_MS = const(800)  # a look for skin: 20 samples, the LEDs on under a second
_POLL_MS = const(400)  # the FIFO holds 32 samples: 1.28 s at 25 Hz
_CONTACT_MIN = const(30000)  # mean IR counts (of 262143) with skin on the sensor
_REFRACTORY_S = const(0.3)  # beats closer than this are one beat (200 bpm)
_BPM_MIN = const(30)
_BPM_MAX = const(220)


class MAX30102:
    def __init__(self, i2c, clock, addr=_ADDR):
        self.i2c = i2c
        self.clock = clock
        self.addr = addr
        self.ok = False
        self.last_ir = None  # mean IR of the last reading (diagnostics)

    def _w(self, reg, value):
        self.i2c.writeto_mem(self.addr, reg, bytes((value,)))

    def _r(self, reg, n=1):
        return self.i2c.readfrom_mem(self.addr, reg, n)

    def init(self):
        try:
            self.ok = self._r(_REG_PART_ID)[0] == _PART_ID
        except OSError:
            self.ok = False
        if self.ok:
            self._w(_REG_MODE, _MODE_RESET)
            self._w(_REG_MODE, _MODE_SHDN)  # asleep until a reading is wanted
        return self.ok

    def _start(self):
        self._w(_REG_FIFO_CONFIG, _FIFO_AVG4_ROLL)
        self._w(_REG_SPO2_CONFIG, _SPO2_4096NA_100SPS_411US)
        self._w(_REG_LED1, _LED_7MA)
        self._w(_REG_LED2, _LED_7MA)
        for reg in (_REG_FIFO_WR, _REG_OVF, _REG_FIFO_RD):
            self._w(reg, 0)
        self._w(_REG_MODE, _MODE_SPO2)

    def read_fifo(self, buf, n_have):
        # Stores the IR value of every sample waiting in the FIFO in buf from
        # n_have on (what does not fit is dropped); returns the new count.
        wr = self._r(_REG_FIFO_WR)[0] & 0x1F
        rd = self._r(_REG_FIFO_RD)[0] & 0x1F
        n = (wr - rd) & 0x1F
        if n == 0 and self._r(_REG_OVF)[0]:
            n = 32  # full and overrun: a whole FIFO is waiting
        if n:
            raw = self._r(_REG_FIFO_DATA, 6 * n)
            for i in range(0, 6 * n, 6):
                if n_have < len(buf):
                    buf[n_have] = (raw[i + 3] << 16 | raw[i + 4] << 8 | raw[i + 5]) & 0x3FFFF
                    n_have += 1
        return n_have

    async def heart_rate(self):
        # Beats per minute, or None (no sensor, nothing on the skin, no clear beat).
        if not self.ok and not self.init():
            return None
        # One block for the whole reading (a growing list would ask the heap for
        # ever larger blocks while the alarm is busy with the network).
        buf = array("i", bytes(4 * (_MEASURE_MS * _RATE_HZ // 1000 + 32)))
        n = 0
        try:
            self._start()
            end = self.clock.ticks_add(self.clock.ticks_ms(), _MEASURE_MS)
            while self.clock.ticks_diff(end, self.clock.ticks_ms()) > 0:
                await self.clock.sleep_ms(_POLL_MS)
                n = self.read_fifo(buf, n)
        except OSError:
            return None
        finally:
            try:
                self._w(_REG_MODE, _MODE_SHDN)
            except OSError:
                pass
        return bpm(buf, n, _RATE_HZ, self)


    async def on_skin(self):
        # True when the infrared that comes back is skin's (the mean IR at or above
        # _CONTACT_MIN, as for a heart rate), False when it is not, None without a
        # sensor. Its limits: a loose strap or a dark, tattooed or very hairy wrist
        # sends back less light; the watch face down on a pale surface sends back more.
        if not self.ok and not self.init():
            return None
        buf = array("i", bytes(4 * 32))
        n = 0
        try:
            self._start()
            await self.clock.sleep_ms(_SKIN_MS)
            n = self.read_fifo(buf, n)
        except OSError:
            return None
        finally:
            try:
                self._w(_REG_MODE, _MODE_SHDN)
            except OSError:
                pass
        if not n:
            return None
        total = 0
        for i in range(n):
            total += buf[i]
        self.last_ir = total // n
        return self.last_ir >= _CONTACT_MIN


def bpm(ir, n, rate, stats=None):
    # Beats per minute in the first n IR samples of ir (an array, reused in place).
    if n < rate * 3:
        return None
    total = 0
    for i in range(n):
        total += ir[i]
    mean = total // n
    if stats is not None:
        stats.last_ir = mean
    if mean < _CONTACT_MIN:
        return None
    # Baseline: a moving average over one second; what is left is the pulse,
    # written over the samples already passed (ac[k] is sample k + w // 2).
    w = rate
    acc = 0
    for i in range(w):
        acc += ir[i]
    for i in range(w, n):
        v = ir[i - w // 2] - acc // w
        acc += ir[i] - ir[i - w]
        ir[i - w] = v
    m = n - w
    top = 0
    for i in range(m):
        if ir[i] > top:
            top = ir[i]
    if top <= 0:
        return None
    thr = top // 2
    gap = int(_REFRACTORY_S * rate)
    first = last = None
    count = 0
    for i in range(1, m - 1):
        if ir[i] > thr and ir[i] > ir[i - 1] and ir[i] >= ir[i + 1]:
            if last is not None and i - last < gap:
                if ir[i] > ir[last]:
                    last = i  # the same beat, its true top
                continue
            if first is None:
                first = i
            last = i
            count += 1
    if count < 3 or last == first:
        return None
    value = (60 * rate * (count - 1) + (last - first) // 2) // (last - first)
    return value if _BPM_MIN <= value <= _BPM_MAX else None
