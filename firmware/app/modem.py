# AT-command driver for the SIMCom LTE modem (SIM7600 and A7670 families). It
# brings the modem up, selects a network for a virtual-SIM profile, keeps the
# registration state, and caches the serving cell, signal and GNSS fix, so an
# alarm never waits on the UART: it takes the last values. Unsolicited lines
# (calls, SMS, a modem that rebooted by itself) go to the `on_urc` callback.
import asyncio
from app import Flag, Wake, at
from micropython import const

_BOOT_WAIT_MS = const(30000)  # the datasheets give ~11 s; a cold modem in the cold takes longer
_SELECT_TIMEOUT_MS = const(120000)  # AT+COPS=0 answers at once; registration may take this long
_REG_POLL_MS = const(3000)  # between registration queries while waiting for the URC
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
        self._pending = None  # lines of the command in flight, until its final result
        self._sent = ""  # that command's text
        self._prompt = False  # a prompt-taking command waits for its ">"
        # A command whose answer did not come in time is still owed one (the ms
        # to wait for it), and the payload of one whose ">" had not come yet:
        # the modem answers late, never not at all (app/modem.py _settle).
        self._owed = 0
        self._late = None
        self._want = 0  # raw socket bytes still to come after a +CIPRXGET: 2 header
        self.payload = b""  # those bytes, for the socket that asked (app/netsock.py)
        self.net = None  # the socket over this modem (app/netsock.py): it hears the URCs first
        self._done = Wake(clock)
        self.registered = Flag()
        self.ready = False
        self.rebooted = False  # the modem restarted by itself: it must be set up again
        self.alive = True      # False once the UART is gone (powered off)
        self.family = "SIM7600"
        self.stat = None
        self._regs = [None, None, None]  # +CREG, +CGREG, +CEREG stat: registered on any counts
        self.gnss_absent = False
        self.no_sim = False  # AT+CGNSSPWR/CGPS answered ERROR: a variant without GNSS
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
        # Chunks, not readline(): the modem also sends a ">" prompt with no line
        # end, and binary socket data that may hold any byte (hence _feed).
        buf = b""
        try:
            while True:
                chunk = await self._r.read(128)
                if not chunk:
                    break
                buf = self._feed(buf + chunk if buf else chunk)
        except Exception as e:  # a broken UART is a modem that is gone, never a crash
            print("modem: uart", repr(e))
        self.alive = False
        self.ready = False
        self.registered.clear()
        if self.net:
            self.net.lost("modem off")
        self._done.set()

    def _feed(self, buf):
        # Takes what buf holds whole and returns the rest: raw bytes owed to a
        # "+CIPRXGET: 2,<link>,<read_len>,<rest_len>" header (exactly read_len
        # of them, whatever they are), lines, and the prompt of a command that
        # takes one (A76XX/SIM7600 manuals: ">" and no line end, then the payload).
        while buf:
            if self._want:
                n = self._want
                part, buf = (buf, b"") if len(buf) <= n else (buf[:n], buf[n:])
                self.payload = self.payload + part if self.payload else part
                self._want -= len(part)
                continue
            if self._prompt:
                rest = buf.lstrip()
                if rest[:1] == b">":
                    self._prompt = False
                    self._done.set()
                    buf = rest[1:]
                    continue
            i = buf.find(b"\n")
            if i < 0:
                if len(buf) > 512:  # no line end in sight: noise, not a line to keep
                    self.garbage += 1
                    return b""
                return buf
            self._line(buf[:i])
            buf = buf[i + 1:]
        return buf

    def _line(self, raw):
        try:
            line = raw.decode().strip()
        except UnicodeError:
            self.garbage += 1
            return
        if not line:
            return
        if line[:9] == "+CCHRECV:" and line[10:14] == "DATA":
            # The header of TLS data (app/tlssock.py), which the A76XX sends after
            # the read's OK: the raw bytes that follow are the socket's, not lines.
            self._raw(line)
            return
        lines = self._pending
        if lines is None and self._owed and _final(line) and not self._unsolicited(line):
            self._owed = 0  # the late end of a command given up on: nobody's news (_settle)
            self._done.set()
            return
        # "+CIPRXGET: 1,<link>" (data waiting) is a URC even inside the answer to a read.
        if lines is None or line.startswith("+CIPRXGET: 1") or self._unsolicited(line):
            self._urc(line)
            return
        lines.append(line)
        if line.startswith("+CIPRXGET: 2,"):
            self._raw(line)
        if _final(line):
            self._pending = None  # what follows the final result is nobody's answer
            self._done.set()

    def _raw(self, line):
        # "+CIPRXGET: 2,<link>,<n>,<rest>" or "+CCHRECV: DATA,<s>,<n>": n raw bytes follow.
        try:
            n = int(line.split(",")[2])
        except (IndexError, ValueError):
            n = -1
        # Never more than a read asks for (app/netsock.py, 1500): a corrupt
        # length would otherwise swallow every answer and URC that follows.
        if 0 <= n <= 1500:
            self._want = n
        else:
            self.garbage += 1

    def _unsolicited(self, line):
        # A "+XXX:" line that the pending command cannot have produced, or a
        # known URC, is unsolicited even in the middle of an answer. (Compared
        # one by one, as in _final.)
        if (line.startswith("RDY") or line.startswith("*ATREADY") or line.startswith("SMS DONE")
                or line.startswith("PB DONE") or line.startswith("RING") or line.startswith("VOICE CALL:")
                or line.startswith("MISSED_CALL:") or line.startswith("NORMAL POWER DOWN")
                or line.startswith("+CGNSSPWR: READY")):
            return True
        sent = self._sent
        if line == "NO CARRIER" or line == "BUSY" or line == "NO ANSWER":
            # A call's end is only the answer of a call command; amid any other
            # answer it is the call's URC, and that answer's OK is still to come.
            return not (sent.startswith("ATD") or sent.startswith("ATA"))
        if line[:1] != "+" or ":" not in line or line.startswith("+CME") or line.startswith("+CMS"):
            return False
        # "+CREG: ..." answers AT+CREG? only, not AT+CEREG?: the name must be
        # the command's whole name, followed by "=", "?" or nothing.
        name = line[1:line.index(":")]
        n = 3 + len(name)
        return not (sent[3:n] == name and (len(sent) == n or sent[n] == "=" or sent[n] == "?"))

    def _urc(self, line):
        self.urcs += 1
        if self.net and self.net.urc(line):
            return
        if line == "RDY" or line == "*ATREADY: 1":
            if self._owed:
                self._owed, self._late = 0, None  # a modem that (re)started owes no answer
                self._done.set()
        if (line == "RDY" or line == "*ATREADY: 1") and (self.ready or self.rebooted):
            # Nobody asked it to restart: everything we set up is gone.
            print("modem: rebooted by itself (boot banner)")
            self.ready = False
            self.rebooted = True
            self.gnss_on = False
            self.registered.clear()
        kind = at.reg_kind(line)
        if kind is not None:
            stat = at.cereg_stat(line, query=False)
            if stat is not None:
                self._set_stat(stat, kind)
        if self.on_urc:
            try:
                self.on_urc(line)
            except Exception as e:
                print("modem: urc handler", repr(e))

    def _set_stat(self, stat, kind=None):
        # kind: 0 CREG, 1 CGREG, 2 CEREG; None: all three (the modem is deaf)
        regs = self._regs
        if kind is None:
            regs[0] = regs[1] = regs[2] = stat
        else:
            regs[kind] = stat
        # Registered on any of the three: a 2G or 3G fallback carries calls and data too.
        best = stat
        for s in regs:
            if at.registered(s):
                best = s
        self.stat = best
        if at.registered(best):
            self.registered.set()
        else:
            self.registered.clear()

    def cmd(self, text, timeout_ms=2000):
        # Returns the response lines (final result last), or None on timeout.
        # (An awaitable, not a coroutine of its own: one frame less in the heap
        # for every exchange, and the socket's reader and writer each hold one.)
        return self._exchange(text, None, timeout_ms)

    def prompted(self, text, payload, timeout_ms=5000):
        # A command that prompts for its payload (AT+CIPSEND, AT+CMGS): send
        # text, wait for ">", send payload, wait for the final result. Returns
        # the lines as cmd() does; an answer instead of the prompt ends it there.
        return self._exchange(text, payload, timeout_ms)

    async def _exchange(self, text, payload, timeout_ms):
        async with self._lock:
            if not self.alive:
                return None
            owed = False  # the command is out and its final result not in
            try:
                if self._owed:
                    await self._settle()
                lines = self._pending = []
                self._sent = text
                self._prompt = payload is not None
                self._done.clear()
                owed = True
                self._w.write((text + "\r\n").encode())
                await self._w.drain()
                if not await self._done.wait_ms(timeout_ms):
                    return None
                if payload is not None and self._pending is not None:  # the prompt, not an answer
                    self._w.write(payload)
                    payload = None  # the modem has its data
                    await self._w.drain()
                    if not await self._done.wait_ms(timeout_ms):
                        return None
                owed = False
                lines = [ln for ln in lines if ln != text]  # drop the echo
                return lines if lines else None
            except OSError:
                owed = False  # the UART is gone: nothing more comes
                return None
            finally:
                # Given up on (a timeout, or the caller cancelled: a connection
                # closed while its reader read), not forgotten: the modem still
                # answers it, and still waits for the payload its ">" asks for.
                if owed and self._pending is not None:
                    self._owed, self._late = timeout_ms, payload
                self._pending = None
                if self._late is None:
                    self._prompt = False  # else a late ">" is still looked for (_feed)

    async def _settle(self):
        # The last command's answer did not come in time (a busy modem, or a
        # host): the modem answers it all the same, later, and one command at a
        # time (manuals: the next command after the final result). Sent now, the
        # next command would take that late answer for its own, every answer
        # after it would be one behind, and a prompt-taking command ended by a
        # stale OK would leave the modem waiting for its payload, swallowing the
        # commands that follow as data (an AT+CCHSEND's or AT+CCERTDOWN's bytes).
        # So: wait for the late end (twice as long again; a boot banner ends
        # the wait) and give a late ">" its payload. A modem silent all that
        # while lost the command: the next one goes.
        ms, t0 = 2 * self._owed, self.clock.ticks_ms()
        while self.alive:
            self._done.clear()
            if self._late is not None and not self._prompt:  # the late ">" came
                self._w.write(self._late)
                self._late = None
                await self._w.drain()
                continue
            left = ms - self.clock.ticks_diff(self.clock.ticks_ms(), t0)
            if not self._owed or left <= 0:
                break
            await self._done.wait_ms(left)
        self._owed, self._late, self._prompt = 0, None, False

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
        # The A76xx variants without GNSS have a model suffix starting with L
        # (A7670E-LASE, A7670SA-LASC, A7670G-LLSE, ...; the -FASE ones have GNSS),
        # as LilyGO's T-A7670 examples list them.
        self.gnss_absent = False
        for ln in lines:
            i = ln.find("-")
            if ln.startswith("A76") and i > 0 and ln[i + 1:i + 2] == "L":
                self.gnss_absent = True
        if self.gnss_absent:
            print("modem: no GNSS")
        for _ in range(10):
            lines = await self.cmd("AT+CPIN?", 5000)
            if lines and at.cpin_ready(at.find(lines, "+CPIN") or ""):
                break
            await self.clock.sleep_ms(1000)
        else:
            self.no_sim = True  # it answers, but no SIM is ready: emergency calls only
            return False
        # Registration URCs of all three domains: GSM or WCDMA fallback counts too.
        await self.ok("AT+CREG=1")
        await self.ok("AT+CGREG=1")
        await self.ok("AT+CEREG=1")
        # ATH ends a voice call only after AT+CVHU=0 (both manuals); hangup() uses AT+CHUP anyway.
        await self.ok("AT+CVHU=0")
        await self.ok("AT+CLIP=1")
        await self.ok("AT+CLCC=1")  # +CLCC URCs: the call's state as the modem sees it (app/calls.py)
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
        # AT+COPS=0 answers OK at once and the registration follows as
        # +CREG/+CGREG/+CEREG URCs; AT+COPS=1 may answer only after its attempt
        # (OK, or an error for a PLMN that refuses the SIM). Either way the URCs
        # and the queries below say when it is registered, on any RAT.
        self._set_stat(2)
        if plmn:
            lines = await self.cmd('AT+COPS=1,2,"%s"' % plmn, _SELECT_TIMEOUT_MS)
        else:
            lines = await self.cmd("AT+COPS=0", _SELECT_TIMEOUT_MS)
        if not lines or lines[-1] != "OK":
            return False
        end = self.clock.ticks_add(self.clock.ticks_ms(), _SELECT_TIMEOUT_MS)
        while True:
            stat = await self.poll_registration()
            if self.registered.is_set():
                return True
            if stat == 3 or not self.alive or self.clock.ticks_diff(end, self.clock.ticks_ms()) <= 0:
                return False  # denied, gone, or nothing within the timeout
            for _ in range(_REG_POLL_MS // 250):  # the URC sets it; a query now and then
                if self.registered.is_set():
                    return True
                await self.clock.sleep_ms(250)

    async def scan(self):
        # [(plmn, stat)] of the networks in range, as AT+COPS=? lists them (slow).
        lines = await self.cmd("AT+COPS=?", _SCAN_TIMEOUT_MS)
        return at.cops_list(at.find(lines or [], "+COPS:") or "")

    async def poll_registration(self):
        # The registration state, best of LTE, packet and circuit (CEREG first:
        # the usual case asks once).
        stat = await self._query_reg("AT+CEREG?", 2)
        if stat is not None and not at.registered(stat):
            await self._query_reg("AT+CGREG?", 1)
            await self._query_reg("AT+CREG?", 0)
            stat = self.stat
        return stat

    async def _query_reg(self, text, kind):
        lines = await self.cmd(text)
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
        stat = at.cereg_stat(at.find(lines, text[2:-1]) or "")
        if stat is not None:
            self._set_stat(stat, kind)
        return stat

    async def gnss(self, on):
        if on == self.gnss_on:
            return
        # What differs between the families (the rest of the AT set is common).
        if self.gnss_absent:
            return  # no GNSS in this variant: the cell gives the position
        cmd = "AT+CGNSSPWR=%d" if self.family == "A7670" else "AT+CGPS=%d"
        lines = await self.cmd(cmd % on)
        if lines and lines[-1] == "OK":
            self.gnss_on = on
        elif on and lines and lines[-1] == "ERROR":
            # A variant without GNSS (A7670E-LASE) rejects the command: do not
            # ask again this power-on, nor wait for a fix.
            print("modem: no GNSS")
            self.gnss_absent = True

    async def poll(self):
        if await self.poll_registration() is None and self.silent:
            return  # deaf: asking more only adds timeouts
        lines = await self.cmd("AT+CSQ")
        if lines:
            self.rssi = at.csq_dbm(at.find(lines, "+CSQ") or "")
        lines = await self.cmd("AT+CPSI?")
        if lines:
            cell = at.cpsi(at.find(lines, "+CPSI") or "", self.family)
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
        # ATD's final result: "OK" (the call is on its way; app/calls.py follows
        # it from the URCs), "NO CARRIER", "BUSY", "ERROR"..., None: no answer.
        lines = await self.cmd("ATD%s;" % number, 10000)
        return lines[-1] if lines else None

    async def answer(self):
        return await self.ok("ATA", 5000)

    async def hangup(self):
        # AT+CHUP ends a voice call whatever AT+CVHU says (ATH does only after
        # AT+CVHU=0: SIM7600 and A76XX manuals).
        return await self.ok("AT+CHUP", 5000)

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

    async def send_sms(self, number, text):
        # Text mode (AT+CMGF=1 at bring-up): "> ", the text, Ctrl-Z; the answer is
        # "+CMGS: <mr>" and OK once the network has it (the manuals allow 60 s).
        lines = await self.prompted('AT+CMGS="%s"' % number, text.encode() + b"\x1a", 60000)
        return bool(lines) and lines[-1] == "OK"

    async def power_off(self):
        # True when the modem took AT+CPOF; otherwise the board pulls PWRKEY.
        lines = await self.cmd("AT+CPOF", 3000)
        self.ready = False
        self.registered.clear()
        return bool(lines) and lines[0] == "OK"
