# A recording stand-in for MicroPython's ESP32 `machine` module, so that
# hal/esp32.py itself runs under the unix port (tests/firmware/mpy/ut_esp32_hal.py).
# It keeps what the HAL asked of the hardware (LOG) and the pin levels the test
# sets (LEVELS); lightsleep blocks the VM for real, as the chip does.
# With PERS_HWSIM_WIRES (a loopback port) the pins, SPI, I2C, ADC and PWM go
# to hwsim's models over the wire instead (hwsim/wires.py: the protocol), and
# lightsleep ends when a wake pin reaches its level there.
import io
import os
import time

PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
# machine.wake_reason(): ESP-IDF's esp_sleep_wakeup_cause_t, as MicroPython's esp32 port names them
EXT0_WAKE, EXT1_WAKE, TIMER_WAKE = 2, 3, 4
_wake = [0]
_rtc_mem = [b""]
LOG = []
LEVELS = {}          # pin number -> level; a button at rest reads 1 (pulled up)
DURING_SLEEP = []    # callables run inside the next lightsleep (a press while asleep)
_cause = [PWRON_RESET]
_wire = [None]
_WIRES_PORT = os.getenv("PERS_HWSIM_WIRES")


def wire(line, answer=False):
    # One line to hwsim with the board's tick; the answer when one is due.
    if _wire[0] is None:
        import socket
        s = socket.socket()
        s.connect(socket.getaddrinfo("127.0.0.1", int(_WIRES_PORT))[0][-1])
        _wire[0] = s
    _wire[0].write(b"%s %d %s\n" % (line[0].encode(), time.ticks_ms(), line[1:].strip().encode()))
    if answer:
        return _wire[0].readline().strip().decode()


def _read(pin):
    if _WIRES_PORT and pin not in LEVELS:
        return int(wire("L %d" % pin, True))
    return LEVELS.get(pin, 1)


class Pin:
    IN, OUT, PULL_UP = 1, 2, 3
    IRQ_FALLING, IRQ_RISING = 4, 8

    def __init__(self, id, mode=None, pull=None, value=None):
        self.id = id
        LOG.append(("pin", id, mode, pull))
        if value is not None:
            LEVELS[id] = value
            if not _WIRES_PORT:  # wired, the panel's D/C and CS would fill the heap
                LOG.append(("level", id, value))

    def value(self, v=None):
        if v is None:
            return _read(self.id)
        LEVELS[self.id] = v
        if _WIRES_PORT:
            wire("G %d %d" % (self.id, v))
        else:
            LOG.append(("level", self.id, v))

    def __call__(self, v=None):
        return self.value(v)

    def irq(self, handler=None, trigger=0):
        LOG.append(("irq", self.id, trigger))


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin):
        self.pin = pin.id
        self._atten = 0      # the ESP32's ADC starts at 0 dB

    def atten(self, a):
        self._atten = a

    def read_uv(self):
        if _WIRES_PORT:
            return int(wire("A %d %d" % (self.pin, self._atten), True))
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
    # Unwired, no device answers: the HAL copes with an absent sensor.
    def __init__(self, *args, **kw):
        pass

    def readfrom_mem(self, addr, reg, n):
        answer = wire("R %d %d %d" % (addr, reg, n), True) if _WIRES_PORT else "NACK"
        if answer == "NACK":
            raise OSError(19)  # ENODEV, as the ESP32 port raises for a NACK
        return bytes.fromhex(answer)

    def writeto_mem(self, addr, reg, buf):
        answer = wire("W %d %d %s" % (addr, reg, bytes(buf).hex()), True) if _WIRES_PORT else "NACK"
        if answer == "NACK":
            raise OSError(19)


class SPI:
    def __init__(self, id, **kw):
        LOG.append(("spi", id, kw.get("baudrate"), kw.get("polarity"), kw.get("phase")))
        self.written = 0

    def write(self, buf):
        self.written += len(buf)
        if _WIRES_PORT:
            wire("S " + bytes(buf).hex())


class PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        self.pin, self._freq, self._duty = pin.id, freq, duty_u16
        LOG.append(("pwm", pin.id, freq, duty_u16))
        self._send()

    def _send(self):
        if _WIRES_PORT:
            wire("P %d %d %d" % (self.pin, self._freq, self._duty))

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f
        self._send()

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        self._duty = d
        self._send()


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


WAKE = {}  # "ext0" / "ext1": (pins, level), set by the esp32 stand-in


def _woken():
    # ext0: its one pin at the level; ext1: any pin high (WAKEUP_ANY_HIGH, 1)
    # or all pins low (WAKEUP_ALL_LOW, 0), as the ESP32's RTC controller wakes.
    for pins, level in WAKE.values():
        levels = [_read(p) for p in pins]
        if (level and any(levels)) or (not level and not any(levels)):
            return True
    return False


def lightsleep(ms):
    LOG.append(("lightsleep", ms))
    t0 = time.ticks_ms()
    while DURING_SLEEP:
        DURING_SLEEP.pop(0)()
    if _WIRES_PORT:
        while time.ticks_diff(time.ticks_ms(), t0) < ms and not _woken():
            time.sleep_ms(2)
        return
    time.sleep_ms(max(0, ms - time.ticks_diff(time.ticks_ms(), t0)))


def deepsleep(ms=0):
    # The chip is off but its RTC domain; the wake is a reset with cause
    # DEEPSLEEP_RESET (the test runs the "next boot" itself).
    LOG.append(("deepsleep", ms))
    raise SystemExit(0)


def reset_cause():
    return _cause[0]


def wake_reason():
    return _wake[0]


def unique_id():
    return b"\x01\x02\x03\x04\x05\x06"


def reset():
    raise SystemExit(0)


class RTC:
    def datetime(self, t=None):
        LOG.append(("rtc", t))

    def memory(self, data=None):
        if data is None:
            return _rtc_mem[0]
        _rtc_mem[0] = bytes(data)
