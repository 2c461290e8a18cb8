# A recording stand-in for MicroPython's ESP32 `machine` module, so that
# hal/esp32.py itself runs under the unix port (tests/firmware/mpy/ut_esp32_hal.py).
# It keeps what the HAL asked of the hardware (LOG) and the pin levels the test
# sets (LEVELS); lightsleep blocks the VM for real, as the chip does.
import time

PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
LOG = []
LEVELS = {}          # pin number -> level; a button at rest reads 1 (pulled up)
DURING_SLEEP = []    # callables run inside the next lightsleep (a press while asleep)
_cause = [PWRON_RESET]


class Pin:
    IN, OUT, PULL_UP = 1, 2, 3
    IRQ_FALLING, IRQ_RISING = 4, 8

    def __init__(self, id, mode=None, pull=None, value=None):
        self.id = id
        LOG.append(("pin", id, mode, pull))
        if value is not None:
            LEVELS[id] = value

    def value(self, v=None):
        if v is None:
            return LEVELS.get(self.id, 1)
        LEVELS[self.id] = v

    def irq(self, handler=None, trigger=0):
        LOG.append(("irq", self.id, trigger))


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin):
        pass

    def atten(self, a):
        pass

    def read_uv(self):
        return 1950000

    def read_u16(self):
        return 12345


class UART:
    def __init__(self, *args, **kw):
        LOG.append(("uart", args, kw.get("tx"), kw.get("rx")))


class I2C:
    # No device answers: the HAL copes with an absent sensor.
    def __init__(self, *args, **kw):
        pass

    def readfrom_mem(self, addr, reg, n):
        raise OSError(19)

    def writeto_mem(self, addr, reg, buf):
        raise OSError(19)


class WDT:
    def __init__(self, timeout=0):
        LOG.append(("wdt", timeout))

    def feed(self):
        LOG.append(("feed",))


class Timer:
    PERIODIC = 1

    def __init__(self, n):
        pass

    def init(self, **kw):
        pass


def lightsleep(ms):
    LOG.append(("lightsleep", ms))
    t0 = time.ticks_ms()
    while DURING_SLEEP:
        DURING_SLEEP.pop(0)()
    time.sleep_ms(max(0, ms - time.ticks_diff(time.ticks_ms(), t0)))


def deepsleep(ms=0):
    LOG.append(("deepsleep", ms))
    raise SystemExit(0)


def reset_cause():
    return _cause[0]


def unique_id():
    return b"\x01\x02\x03\x04\x05\x06"


def reset():
    raise SystemExit(0)


class RTC:
    def datetime(self, t=None):
        LOG.append(("rtc", t))
