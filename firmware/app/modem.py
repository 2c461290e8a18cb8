# AT-command driver for the cellular modem (SIMCom-style). It brings the modem
# up, keeps the registration state, and caches the serving cell, signal and
# GNSS fix, so an alarm never waits on the UART: it takes the last values.
import asyncio
from app import at

FINAL = ("OK", "ERROR", "NO CARRIER")
URC_BANNERS = ("RDY", "SMS DONE", "PB DONE", "*ATREADY: 1")
POLL_MS = 2000


class Modem:
    def __init__(self, clock, reader, writer):
        self.clock = clock
        self._r, self._w = reader, writer
        self._lock = asyncio.Lock()
        self._pending = None  # lines of the command in flight
        self._sent = ""  # that command's text
        self._done = asyncio.Event()
        self.registered = asyncio.Event()
        self.ready = False
        self.cell = None  # {"mcc","mnc","lac","cid","rssi","rat","op"}
        self.rssi = None
        self.fix = None  # last GNSS fix (loc dict)
        self.fix_ticks = None
        self.urcs = 0
        self.garbage = 0

    async def _rx(self):
        while True:
            raw = await self._r.readline()
            if not raw:
                return  # UART closed: only in simulation, the world has ended
            try:
                line = raw.decode().strip()
            except UnicodeError:
                self.garbage += 1
                continue
            if not line:
                continue
            if self._pending is None or self._unsolicited(line):
                self._urc(line)
            else:
                self._pending.append(line)
                if line in FINAL or line.startswith("+CME ERROR") or line.startswith("+CMS ERROR"):
                    self._done.set()

    def _unsolicited(self, line):
        # A "+XXX:" line that the pending command cannot have produced, or a
        # boot banner, is a URC even in the middle of an answer.
        if line in URC_BANNERS:
            return True
        if line[:1] != "+" or ":" not in line or line.startswith("+CME") or line.startswith("+CMS"):
            return False
        return line[1:line.index(":")] not in self._sent

    def _urc(self, line):
        self.urcs += 1
        stat = at.cereg_stat(line, query=False)
        if stat is not None:
            self._set_registered(at.registered(stat))

    def _set_registered(self, yes):
        if yes:
            self.registered.set()
        else:
            self.registered.clear()

    async def cmd(self, text, timeout_ms=2000):
        # Returns the response lines (final result last), or None on timeout.
        async with self._lock:
            self._pending = []
            self._sent = text
            self._done.clear()
            try:
                self._w.write((text + "\r\n").encode())
                await self._w.drain()
                await self.clock.wait_for_ms(self._done.wait(), timeout_ms)
                lines = [ln for ln in self._pending if ln != text]  # drop the echo
                return lines
            except asyncio.TimeoutError:
                return None
            finally:
                self._pending = None

    async def ok(self, text, timeout_ms=2000):
        lines = await self.cmd(text, timeout_ms)
        return lines is not None and lines[-1] == "OK"

    async def bring_up(self):
        # The modem ignores us until it has booted: poll AT until it answers.
        while not await self.ok("AT", 1000):
            await self.clock.sleep_ms(500)
        await self.ok("ATE0")
        while True:
            lines = await self.cmd("AT+CPIN?", 5000)
            if lines and at.cpin_ready(at.find(lines, "+CPIN") or ""):
                break
            await self.clock.sleep_ms(1000)
        await self.ok("AT+CGNSSPWR=1")
        self.ready = True

    async def poll(self):
        lines = await self.cmd("AT+CEREG?")
        stat = at.cereg_stat(at.find(lines or [], "+CEREG") or "")
        if stat is not None:
            self._set_registered(at.registered(stat))
        lines = await self.cmd("AT+CSQ")
        if lines:
            self.rssi = at.csq_dbm(at.find(lines, "+CSQ") or "")
        lines = await self.cmd("AT+CPSI?")
        if lines:
            cell = at.cpsi(at.find(lines, "+CPSI") or "")
            if cell is not None:
                self.cell = cell
        lines = await self.cmd("AT+CGNSSINFO")
        if lines:
            fix = at.cgnssinfo(at.find(lines, "+CGNSSINFO") or "")
            if fix is not None:
                self.fix = fix
                self.fix_ticks = self.clock.ticks_ms()

    def fix_age_ms(self):
        if self.fix_ticks is None:
            return None
        return self.clock.ticks_diff(self.clock.ticks_ms(), self.fix_ticks)

    async def run(self):
        asyncio.create_task(self._rx())
        await self.bring_up()
        while True:
            try:
                await self.poll()
            except Exception as e:  # a confused modem must not stop the watch
                print("modem: poll failed", repr(e))
            await self.clock.sleep_ms(POLL_MS)
