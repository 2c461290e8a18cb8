# AT-command driver for the SIMCom LTE modem (SIM7600 and A7670 families). It
# brings the modem up, selects a network for a virtual-SIM profile, keeps the
# registration state, and caches the serving cell, signal and GNSS fix, so an
# alarm never waits on the UART: it takes the last values. Unsolicited lines
# (calls, SMS, a modem that rebooted by itself) go to the `on_urc` callback.
import asyncio
from app import Wake, at
from micropython import const

_BOOT_WAIT_MS = const(30000)  # the datasheets give ~11 s; a cold modem in the cold takes longer
_SELECT_TIMEOUT_MS = const(120000)
_SCAN_TIMEOUT_MS = const(180000)
_SILENT_REBOOTED = const(2)  # polls with no answer at all before the modem is set up again


def _final(line):
    # The last line of a command's answer. Compared one by one: a tuple of
    # strings loaded from the code image is one heap object per string.
    return (line == "OK" or line == "ERROR" or line == "NO CARRIER" or line == "NO ANSWER" or line == "BUSY"
            or line.startswith("+CME ERROR") or line.startswith("+CMS ERROR"))


class Modem:
    def __init__(self, clock, reader, writer, on_urc=None):
        self.clock = clock
        self._r, self._w = reader, writer
        self.on_urc = on_urc  # (line) -> None
        self._lock = asyncio.Lock()
        self._pending = None  # lines of the command in flight
        self._sent = ""  # that command's text
        self._done = Wake(clock)
        self.registered = asyncio.Event()
        self.ready = False
        self.rebooted = False  # the modem restarted by itself: it must be set up again
        self.alive = True      # False once the UART is gone (powered off)
        self.family = "SIM7600"
        self.stat = None
        self.cell = None  # {"mcc","mnc","lac","cid","rssi","rat","op"}
        self.rssi = None
        self.fix = None  # last GNSS fix (loc dict)
        self.fix_ticks = None
        self.gnss_on = False
        self.urcs = 0
        self.garbage = 0
        self.silent = 0
        self._rx_task = None

    def start(self):
        self._rx_task = asyncio.create_task(self._rx())

    async def _rx(self):
        try:
            while True:
                raw = await self._r.readline()
                if not raw:
                    break
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
                    if _final(line):
                        self._done.set()
        except Exception as e:  # a broken UART is a modem that is gone, never a crash
            print("modem: uart", repr(e))
        self.alive = False
        self.ready = False
        self.registered.clear()
        self._done.set()

    def _unsolicited(self, line):
        # A "+XXX:" line that the pending command cannot have produced, or a
        # known URC, is unsolicited even in the middle of an answer. (Compared
        # one by one, as in _final.)
        if (line.startswith("RDY") or line.startswith("*ATREADY") or line.startswith("SMS DONE")
                or line.startswith("PB DONE") or line.startswith("RING") or line.startswith("VOICE CALL:")
                or line.startswith("MISSED_CALL:") or line.startswith("NORMAL POWER DOWN")
                or line.startswith("+CGNSSPWR: READY")):
            return True
        if line[:1] != "+" or ":" not in line or line.startswith("+CME") or line.startswith("+CMS"):
            return False
        return line[1:line.index(":")] not in self._sent

    def _urc(self, line):
        self.urcs += 1
        if (line == "RDY" or line == "*ATREADY: 1") and (self.ready or self.rebooted):
            # Nobody asked it to restart: everything we set up is gone.
            print("modem: rebooted by itself (boot banner)")
            self.ready = False
            self.rebooted = True
            self.gnss_on = False
            self.registered.clear()
        stat = at.cereg_stat(line, query=False) if line.startswith("+CEREG") or line.startswith("+CREG") else None
        if stat is not None:
            self._set_stat(stat)
        if self.on_urc:
            try:
                self.on_urc(line)
            except Exception as e:
                print("modem: urc handler", repr(e))

    def _set_stat(self, stat):
        self.stat = stat
        if at.registered(stat):
            self.registered.set()
        else:
            self.registered.clear()

    async def cmd(self, text, timeout_ms=2000):
        # Returns the response lines (final result last), or None on timeout.
        async with self._lock:
            if not self.alive:
                return None
            self._pending = []
            self._sent = text
            self._done.clear()
            try:
                self._w.write((text + "\r\n").encode())
                await self._w.drain()
                if not await self._done.wait_ms(timeout_ms):
                    return None
                lines = [ln for ln in self._pending if ln != text]  # drop the echo
                return lines if lines else None
            except OSError:
                return None
            finally:
                self._pending = None

    async def ok(self, text, timeout_ms=2000):
        lines = await self.cmd(text, timeout_ms)
        return lines is not None and lines[-1] == "OK"

    async def bring_up(self):
        # The modem ignores us until it has booted: poll AT until it answers.
        start = self.clock.ticks_ms()
        while not await self.ok("AT", 300):
            if not self.alive:
                return False
            if self.clock.ticks_diff(self.clock.ticks_ms(), start) > _BOOT_WAIT_MS:
                return False
            await self.clock.sleep_ms(200)
        self.rebooted = False
        await self.ok("ATE0")
        await self.ok("AT+CMEE=1")
        lines = await self.cmd("AT+CGMM") or []
        self.family = "A7670" if any("A76" in ln for ln in lines) else "SIM7600"
        for _ in range(10):
            lines = await self.cmd("AT+CPIN?", 5000)
            if lines and at.cpin_ready(at.find(lines, "+CPIN") or ""):
                break
            await self.clock.sleep_ms(1000)
        else:
            return False
        await self.ok("AT+CEREG=1")
        await self.ok("AT+CLIP=1")
        await self.ok("AT+CMGF=1")
        await self.ok("AT+CTZU=1")  # keep the network's time (NITZ): app/netclock.py
        self.ready = True
        return True

    async def clock_line(self):
        # The modem's clock, "+CCLK: ..." (app/netclock.py makes sense of it).
        return at.find(await self.cmd("AT+CCLK?") or [], "+CCLK") or ""

    # --- network selection ----------------------------------------------------------
    async def select(self, apn, plmn=None):
        # Registers on plmn (manual) or automatically; True when registered.
        if apn:
            await self.ok('AT+CGDCONT=1,"IP","%s"' % apn)
        if plmn:
            lines = await self.cmd('AT+COPS=1,2,"%s"' % plmn, _SELECT_TIMEOUT_MS)
        else:
            lines = await self.cmd("AT+COPS=0", _SELECT_TIMEOUT_MS)
        await self.poll_registration()
        return bool(lines) and lines[-1] == "OK" and self.registered.is_set()

    async def scan(self):
        # [(plmn, stat)] of the networks in range, as AT+COPS=? lists them (slow).
        lines = await self.cmd("AT+COPS=?", _SCAN_TIMEOUT_MS)
        return at.cops_list(at.find(lines or [], "+COPS:") or "")

    async def poll_registration(self):
        lines = await self.cmd("AT+CEREG?")
        if lines is None:
            # No answer at all: a modem that restarted is deaf for seconds. Say so
            # now, not when its boot banner comes, so nobody uses a dead bearer.
            self.silent += 1
            self._set_stat(0)
            if self.silent >= _SILENT_REBOOTED and self.ready:
                print("modem: rebooted by itself (not answering)")
                self.ready = False
                self.rebooted = True
                self.gnss_on = False
            return None
        self.silent = 0
        stat = at.cereg_stat(at.find(lines, "+CEREG") or "")
        if stat is not None:
            self._set_stat(stat)
        return stat

    async def gnss(self, on):
        if on == self.gnss_on:
            return
        # What differs between the families (the rest of the AT set is common).
        cmd = "AT+CGNSSPWR=%d" if self.family == "A7670" else "AT+CGPS=%d"
        if await self.ok(cmd % on):
            self.gnss_on = on

    async def poll(self):
        if await self.poll_registration() is None and self.silent:
            return  # deaf: asking more only adds timeouts
        lines = await self.cmd("AT+CSQ")
        if lines:
            self.rssi = at.csq_dbm(at.find(lines, "+CSQ") or "")
        lines = await self.cmd("AT+CPSI?")
        if lines:
            cell = at.cpsi(at.find(lines, "+CPSI") or "")
            if cell is not None:
                self.cell = cell
        if self.gnss_on:
            await self.poll_gnss()

    async def poll_gnss(self):
        lines = await self.cmd("AT+CGNSSINFO")
        if lines:
            fix = at.cgnssinfo(at.find(lines, "+CGNSSINFO") or "")
            if fix is not None:
                self.fix = fix
                self.fix_ticks = self.clock.ticks_ms()
                return fix
        return None

    def fix_age_ms(self):
        if self.fix_ticks is None:
            return None
        return self.clock.ticks_diff(self.clock.ticks_ms(), self.fix_ticks)

    # --- calls and messages -------------------------------------------------------------
    async def dial(self, number):
        lines = await self.cmd("ATD%s;" % number, 10000)
        return bool(lines) and lines[-1] == "OK"

    async def answer(self):
        return await self.ok("ATA", 5000)

    async def hangup(self):
        return await self.ok("ATH", 5000)

    async def read_sms(self, index):
        # (sender, text) or None
        lines = await self.cmd("AT+CMGR=%d" % index, 5000)
        if not lines or lines[-1] != "OK":
            return None
        head = at.find(lines, "+CMGR:")
        if head is None:
            return None
        i = lines.index(head)
        f = head.split(",")
        sender = f[1].strip().strip('"') if len(f) > 1 else ""
        text = "\n".join(lines[i + 1:-1])
        return sender, text

    async def delete_sms(self, index):
        return await self.ok("AT+CMGD=%d" % index, 5000)

    async def power_off(self):
        await self.cmd("AT+CPOF", 3000)
        self.ready = False
        self.registered.clear()
