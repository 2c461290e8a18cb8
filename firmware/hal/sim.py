# The simulated board (MicroPython unix port). Every wire goes to hwsim over
# loopback TCP: the board bus (buttons, accelerometer, battery in; display,
# vibration, power state out; newline JSON), the I2C bus (register transfers:
# the heart-rate sensor runs the board's own driver, hal/max30102.py), the modem
# UART (raw AT bytes; the data to the broker goes through the modem's own TCP
# commands on it, app/netsock.py, as on the board).
#
# Time runs at hwsim's scenario speed (PERS_SIM_SPEED): the app's 11 s wait for
# the modem or 10 minutes of back-off take a fraction of that in CI, while the
# app code stays exactly what runs on the board.
import asyncio
import binascii
import errno
import json
import os
import select
import socket
import time
import hal
from micropython import const

_ENV_HOST = const("PERS_SIM_HOST")
_ENV_BUS = const("PERS_SIM_BUS_PORT")
_ENV_UART = const("PERS_SIM_UART_PORT")
_ENV_I2C = const("PERS_SIM_I2C_PORT")
_ENV_FLASH = const("PERS_SIM_FLASH")
_ENV_SPEED = const("PERS_SIM_SPEED")
_ENV_MEM = const("PERS_SIM_MEM_REPORT")  # ms between heap reports (benchmarks); unset: none
TICKS_MAX = time.ticks_add(0, -1)


def _addr(host, port):
    return socket.getaddrinfo(host, port)[0][-1]


class Clock:
    def __init__(self, speed=1.0):
        self.speed = speed
        self._real0 = time.ticks_ms()
        self._wall0 = None
        self._wall_at = 0

    def ticks_ms(self):
        return int(time.ticks_diff(time.ticks_ms(), self._real0) * self.speed) & TICKS_MAX

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def ticks_add(self, t, ms):
        return time.ticks_add(t, ms)

    def _real_ms(self, ms):
        return max(0, int(ms / self.speed))

    def sleep_ms(self, ms):
        # asyncio's own awaitable, not a coroutine around it: every task that
        # sleeps would hold one more frame in the heap. Await it at once (it is
        # one object that asyncio reuses for every sleep).
        return asyncio.sleep_ms(self._real_ms(ms))

    def wait_for_ms(self, aw, ms):
        return hal.wait_for_ms(aw, max(1, self._real_ms(ms)))

    def set_wall(self, unix_s):
        # The board's RTC (hal/esp32.py): unset (None) from each boot until
        # app/netclock.py sets it from the network or a fix; hwsim gives no time.
        self._wall0 = unix_s
        self._wall_at = self.ticks_ms()

    def wall(self):
        if self._wall0 is None:
            return None
        return int(self._wall0 + self.ticks_diff(self.ticks_ms(), self._wall_at) // 1000)


class Watchdog:
    # hwsim enforces it: no feed within timeout_ms and the watch is restarted.
    def __init__(self, board, timeout_ms):
        self.board = board
        self.timeout_ms = timeout_ms
        self._last = None
        board._send({"ev": "wdt", "timeout_ms": timeout_ms})

    def feed(self):
        now = self.board.clock.ticks_ms()
        if self._last is None or time.ticks_diff(now, self._last) >= 1000:
            self._last = now
            self.board._send({"ev": "feed"})

    def hold(self):
        # Safe mode: keep the watch alive with nothing running.
        self.board._send({"ev": "wdt_hold"})


class I2C:
    # machine.I2C's register calls, each one line to hwsim's I2C bus and one
    # back; blocking, as a real transfer is (a NACK is OSError, as on the board).
    def __init__(self, host, port):
        self.addr = _addr(host, port)
        self._s = None

    def _ask(self, line):
        if self._s is None:
            self._s = socket.socket()
            self._s.connect(self.addr)
        self._s.write(line.encode())
        answer = self._s.readline().strip()
        if not answer or answer == b"NACK":
            raise OSError(errno.ENODEV)
        return answer

    def readfrom_mem(self, addr, reg, n):
        return binascii.unhexlify(self._ask("R %d %d %d\n" % (addr, reg, n)))

    def writeto_mem(self, addr, reg, buf):
        self._ask("W %d %d %s\n" % (addr, reg, binascii.hexlify(buf).decode()))


class Board:
    name = "sim"
    # The barometer's driver and rate when one is fitted: class defaults, so a board
    # without one holds no attribute of its own for them (heap).
    _baro = None
    baro_hz = 0
    _moved = False  # the accelerometer's activity latch (moved()); a class default: no slot until it fires

    def __init__(self):
        self.host = os.getenv(_ENV_HOST) or "127.0.0.1"
        self.flash_dir = os.getenv(_ENV_FLASH) or "flash"
        self.clock = Clock(float(os.getenv(_ENV_SPEED) or "1"))
        self._buttons = {}
        self._batt = {"pct": 100, "mv": 4150}
        self._accel = []
        self.accel_hz = 50
        self._on_button = None
        self._sock = socket.socket()
        self._sock.connect(_addr(self.host, int(os.getenv(_ENV_BUS))))
        # The first exchange is blocking: boot needs the buttons before asyncio runs.
        self._send({"ev": "hello"})
        state = json.loads(self._sock.readline())
        self._apply(state)
        self._reset_cause = state.get("reset_cause", "power_on")
        # machine.wake_reason() after a deep sleep; the RTC domain's clock and
        # memory (machine.RTC().memory()), which survive it; RAM does not.
        # One list, not four attributes: every attribute is heap for good.
        self._rtc = [state.get("wake"), int(state.get("rtc_s", 0)), binascii.unhexlify(state.get("rtc_mem") or ""),
                     state.get("wake") == "accel"]  # wake reason, RTC s at hello, RTC memory, FIFO to read
        self._sock.setblocking(False)
        self.i2c = I2C(self.host, int(os.getenv(_ENV_I2C)))
        from hal.max30102 import MAX30102
        self._hr = MAX30102(self.i2c, self.clock)
        # A BMP390 where the board has one (hwsim's [board] barometer), as hal/esp32.py
        # finds it: its driver is imported only then.
        baro, hz = hal.find_barometer(self.i2c)
        if baro is not None:
            self._baro, self.baro_hz = baro, hz
        # The LIS3DH at register level, by the board's own driver: while the CPU
        # deep-sleeps its FIFO and its INT1 (the wake source) are all there is.
        # Loaded only around a deep sleep: awake, the bus carries the motion.
        self._lis = None

    def _apply(self, msg):
        if "buttons" in msg:
            for name, down in msg["buttons"].items():
                self._level(name, bool(down))
        if "batt" in msg:
            self._batt = msg["batt"]
        if msg.get("activity"):
            self._moved = True

    def _send(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        while data:
            try:
                n = self._sock.write(data)
            except OSError as e:
                if e.errno != errno.EAGAIN:
                    raise
                n = 0
            data = data[n or 0:]

    async def _bus(self):
        r = asyncio.StreamReader(self._sock)
        while True:
            line = await r.readline()
            if not line:
                # hwsim is gone: a simulated watch has no world to live in.
                raise SystemExit(0)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            ev = msg.get("ev")
            if ev == "button":
                self._level(msg["name"], bool(msg["down"]))
            elif ev == "accel":
                self.accel_hz = msg.get("hz", 50)
                self._accel.extend(msg["s"])
                if len(self._accel) > 512:  # the sensor FIFO overflows: oldest lost
                    self._accel = self._accel[-512:]
            else:
                self._apply(msg)

    def _level(self, name, down):
        # A pin interrupt's edge, or a level read after wake: a changed level
        # is an edge, reported once (as hal/esp32.py does).
        if self._buttons.get(name, False) != down:
            self._buttons[name] = down
            if self._on_button:
                self._on_button(name, down)

    async def start(self):
        asyncio.create_task(self._bus())
        every = os.getenv(_ENV_MEM)
        if every:
            asyncio.create_task(self._mem_report(int(every)))

    async def _mem_report(self, every_ms):
        # "mem: live=N" lines for the heap benchmark: what stays allocated after a
        # collection, sampled; the benchmark also runs the watch in a heap cut to
        # the budget, which catches the short peaks a sample misses.
        import gc
        while True:
            gc.collect()
            print("mem: live=%d" % gc.mem_alloc())
            await self.clock.sleep_ms(every_ms)

    # --- inputs -----------------------------------------------------------------
    def button(self, name):
        return self._buttons.get(name, False)

    def on_button(self, callback):
        # callback(name, down) on every edge, as a pin interrupt would call it
        self._on_button = callback

    def accel_read(self):
        # Drains the accelerometer FIFO: [[x, y, z] milli-g, ...] at accel_hz.
        # After a deep sleep, first what the LIS3DH's own FIFO kept (the 32
        # samples up to the first read: the history of what woke the board).
        # The samples the bus carried since come with the next read.
        if self._rtc[3]:
            self._rtc[3] = False
            try:
                lis = self._sensor()
                lis.fell()  # the latched INT1 down
                return lis.read()
            except OSError:
                pass
        out, self._accel = self._accel, []
        return out

    def baro_read(self):
        # The barometer's FIFO since the last call: [Pa x 10, ...] oldest first, or None.
        return hal.baro_read(self._baro)

    async def heart_rate(self):
        # Beats per minute from the PPG sensor (seconds of sampling), or None.
        return await self._hr.heart_rate()

    async def worn(self):
        # The PPG sensor sees skin (hal/max30102.py, on hwsim's register model).
        return await self._hr.on_skin()

    def moved(self):
        # True once after movement: the LIS3DH's activity interrupt as
        # hal/lis3dh.py sets it up, raised by hwsim's model of it (hwsim/board.py).
        m, self._moved = self._moved, False
        return m

    def battery(self):
        return dict(self._batt)

    # --- outputs ----------------------------------------------------------------
    def display(self, text):
        self._send({"ev": "display", "text": text})

    def display_off(self):
        self._send({"ev": "display_off"})

    def vibrate(self, ms):
        self._send({"ev": "vibrate", "ms": ms})

    def signal(self, name):
        # A pattern on the motor and the buzzer (hal/haptics.py, as on the board):
        # hwsim is told its name and its length.
        from hal.haptics import PATTERNS
        self._send({"ev": "signal", "name": name, "ms": sum(on + off for on, off in PATTERNS[name])})

    def audio(self, state):
        # The call's audio path (speaker and microphone) on or off.
        self._send({"ev": "audio", "state": state})

    # --- power ------------------------------------------------------------------
    def light_sleep(self, ms):
        # Blocks the whole VM, as machine.lightsleep() does on the board: no
        # task runs and nothing is read from the UART or the bus meanwhile.
        # hwsim holds back the bus while the CPU sleeps and writes to it only
        # for a wake source named here (the SOS pin's level, the accelerometer
        # interrupt), so a readable bus ends the sleep; else the timer does.
        # The caller yields to asyncio after it.
        real = hal.sleep_budget(self.clock._real_ms(ms))
        if real < 1:
            return
        self._send({"ev": "cpu", "state": "sleep", "wake": ["red", "accel"]})
        p = select.poll()
        p.register(self._sock, select.POLLIN)
        p.poll(real)
        # hwsim answers with the pin levels (edges during sleep raised no interrupt).
        self._send({"ev": "cpu", "state": "active"})

    def deep_sleep(self, ms):
        # As machine.deepsleep(): the program ends; hwsim starts it again
        # (reset cause "deepsleep", wake_reason) when the SOS button goes down
        # (ext0), the LIS3DH raises INT1 (ext1) or ms pass (the RTC timer).
        # The sensor is armed first: its latch cleared, its FIFO emptied.
        try:
            lis = self._sensor()
            lis.fell()
            lis.read()
        except OSError:
            pass
        self._send({"ev": "deep_sleep", "ms": ms, "wake": ["red", "accel"]})
        raise SystemExit(0)

    def _sensor(self):
        # The driver programs the part (free-fall on INT1, latched, stream FIFO:
        # hal/lis3dh.py); OSError when it does not answer.
        if self._lis is None:
            from hal.lis3dh import LIS3DH
            lis = LIS3DH(self.i2c)
            if not lis.init(50):
                raise OSError(errno.ENODEV)
            self._lis = lis
        return self._lis

    def rtc(self, memory=None):
        # The RTC domain, which deep sleep keeps and RAM does not: (what ended
        # the deep sleep, machine.wake_reason(): "red", "accel", "timer", None
        # after any other reset; the RTC's seconds, which run through it while
        # ticks_ms starts again at 0; machine.RTC().memory(), lost at power-on).
        # With memory: writes it. One method for the three: each is heap for good.
        r = self._rtc
        if memory is None:
            return r[0], r[1] + self.clock.ticks_ms() // 1000, r[2]
        r[2] = bytes(memory)
        self._send({"ev": "rtc_mem", "hex": binascii.hexlify(r[2]).decode()})

    def watchdog(self, timeout_ms):
        return Watchdog(self, timeout_ms)

    def reset_cause(self):
        return self._reset_cause

    def random_bytes(self, n):
        # The board's own path (os.urandom and the tick, hal.random_bytes) and
        # nothing from hwsim: a simulated watch draws its installation id no
        # more luckily than a real one.
        return hal.random_bytes(n)

    async def modem_uart(self):
        # Opening the UART is the PWRKEY pulse: the emulator counts it as power-on.
        return await asyncio.open_connection(self.host, int(os.getenv(_ENV_UART)))

    def modem_power_off(self, writer, pulse=False):
        # pulse: the modem did not take AT+CPOF; hold PWRKEY low to switch it off
        # (the board's GPIO, so hwsim hears it on the board bus).
        if pulse:
            self._send({"ev": "modem_pwrkey"})
        try:
            writer.close()
        except OSError:
            pass

    def reboot(self):
        self._send({"ev": "reboot"})
        raise SystemExit(0)

    def power_off(self):
        # Until the charger wakes it: hwsim does not restart the watch.
        self._send({"ev": "power_off"})
        raise SystemExit(0)
