# A recording stand-in for MicroPython's ESP32 `machine` module, so that
# hal/esp32.py itself runs under the unix port (tests/firmware/mpy/ut_esp32_hal.py).
# It keeps what the HAL asked of the hardware (LOG) and the pin levels the test
# sets (LEVELS); lightsleep blocks the VM for real, as the chip does.
import io
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


UARTS = []  # every UART the HAL opened


class UART(io.IOBase):
    # A stream that asyncio can poll, with a modem behind it that answers as
    # the SIMCom manuals show (OK; "+CSQ: 20,99" then OK; AT+CIPSEND's ">" with
    # no line end, then exactly <len> payload bytes, OK and "+CIPSEND: 0,<len>,<len>").
    # It notes every write made while an answer was still unread: with one user
    # at a time (the Modem's lock), a command never goes out over an answer.
    def __init__(self, *args, **kw):
        LOG.append(("uart", args, kw.get("tx"), kw.get("rx")))
        UARTS.append(self)
        self.rx = b""
        self.commands = []
        self.payloads = []
        self.overlaps = []
        self._payload_len = 0

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL: readable with an answer waiting, always writable
            return (arg & 1 if self.rx else 0) | (arg & 4)
        return 0

    def read(self, n=-1):
        if not self.rx:
            return None
        n = len(self.rx) if n < 0 else n
        data, self.rx = self.rx[:n], self.rx[n:]
        return data

    def readinto(self, buf):
        data = self.read(len(buf))
        if not data:
            return None
        buf[:len(data)] = data
        return len(data)

    def write(self, data):
        data = bytes(data)
        if self._payload_len:
            self.payloads.append(data)
            self._payload_len -= len(data)
            if self._payload_len <= 0:
                n = len(self.payloads[-1])
                self.rx += b"\r\nOK\r\n\r\n+CIPSEND: 0,%d,%d\r\n" % (n, n)
            return len(data)
        if self.rx:
            self.overlaps.append(data)
        cmd = data.strip().decode()
        self.commands.append(cmd)
        if cmd.startswith("AT+CIPSEND=0,"):
            self._payload_len = int(cmd.split(",")[1])
            self.rx += b"\r\n>"
        elif cmd == "AT+CSQ":
            self.rx += b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
        else:
            self.rx += b"\r\nOK\r\n"
        return len(data)


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
