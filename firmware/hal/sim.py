# The simulated board (MicroPython unix port). Every wire goes to hwsim over
# loopback TCP: the board bus (buttons in; display, vibration out; newline
# JSON), the modem UART (raw AT bytes), and the data link (a proxy that passes
# traffic only while the simulated modem has coverage).
import asyncio
import errno
import json
import os
import socket
import time

ENV_HOST = "PERS_SIM_HOST"
ENV_BUS = "PERS_SIM_BUS_PORT"
ENV_UART = "PERS_SIM_UART_PORT"
ENV_LINK = "PERS_SIM_LINK_PORT"
ENV_FLASH = "PERS_SIM_FLASH"


def _addr(host, port):
    return socket.getaddrinfo(host, port)[0][-1]


class Clock:
    # Real time for now; hwsim's time acceleration will scale these in one place.
    def __init__(self):
        self._wall0 = None
        self._ticks0 = time.ticks_ms()

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def ticks_add(self, t, ms):
        return time.ticks_add(t, ms)

    async def sleep_ms(self, ms):
        await asyncio.sleep_ms(ms)

    async def wait_for_ms(self, aw, ms):
        return await asyncio.wait_for_ms(aw, ms)

    def set_wall(self, unix_s):
        self._wall0 = unix_s
        self._ticks0 = time.ticks_ms()

    def wall(self):
        if self._wall0 is None:
            return None
        return int(self._wall0 + time.ticks_diff(time.ticks_ms(), self._ticks0) // 1000)


class Watchdog:
    # hwsim enforces it: no feed within timeout_ms and the watch is restarted.
    def __init__(self, board, timeout_ms):
        self.board = board
        self.timeout_ms = timeout_ms
        self._last = None
        board._send({"ev": "wdt", "timeout_ms": timeout_ms})

    def feed(self):
        now = time.ticks_ms()
        if self._last is None or time.ticks_diff(now, self._last) >= 1000:
            self._last = now
            self.board._send({"ev": "feed"})

    def hold(self):
        # Safe mode: keep the watch alive with nothing running.
        self.board._send({"ev": "wdt_hold"})


class Link:
    def __init__(self, host, port):
        self.host, self.port = host, port

    async def open(self, host, port):
        # Like AT+CIPOPEN: name the destination, the network answers OK or not.
        r, w = await asyncio.open_connection(self.host, self.port)
        w.write(("OPEN %s %d\n" % (host, port)).encode())
        await w.drain()
        answer = await r.readline()
        if answer.strip() != b"OK":
            w.close()
            raise OSError("link refused: %s" % answer.strip().decode())
        return r, w


class Board:
    def __init__(self):
        self.host = os.getenv(ENV_HOST) or "127.0.0.1"
        self.flash_dir = os.getenv(ENV_FLASH) or "flash"
        self.clock = Clock()
        self._buttons = {}
        self._batt = {"pct": 100, "mv": 4150}
        self._sock = socket.socket()
        self._sock.connect(_addr(self.host, int(os.getenv(ENV_BUS))))
        # The first exchange is blocking: boot needs the buttons before asyncio runs.
        self._send({"ev": "hello"})
        state = json.loads(self._sock.readline())
        self._apply(state)
        self._reset_cause = state.get("reset_cause", "power_on")
        self._sock.setblocking(False)
        self.link = Link(self.host, int(os.getenv(ENV_LINK)))

    def _apply(self, msg):
        if "buttons" in msg:
            self._buttons.update(msg["buttons"])
        if "wall" in msg and msg["wall"] is not None:
            self.clock.set_wall(msg["wall"])
        if "batt" in msg:
            self._batt = msg["batt"]

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
            if msg.get("ev") == "button":
                self._buttons[msg["name"]] = bool(msg["down"])
            else:
                self._apply(msg)

    async def start(self):
        asyncio.create_task(self._bus())

    def button(self, name):
        return self._buttons.get(name, False)

    def display(self, text):
        self._send({"ev": "display", "text": text})

    def vibrate(self, ms):
        self._send({"ev": "vibrate", "ms": ms})

    def battery(self):
        return dict(self._batt)

    def watchdog(self, timeout_ms):
        return Watchdog(self, timeout_ms)

    def reset_cause(self):
        return self._reset_cause

    async def modem_uart(self):
        return await asyncio.open_connection(self.host, int(os.getenv(ENV_UART)))

    def reboot(self):
        self._send({"ev": "reboot"})
        raise SystemExit(0)
