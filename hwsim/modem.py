"""An emulator of a SIMCom LTE modem with GNSS (SIM7600 and A7670 families) on the watch's UART.

One UART connection is one power cycle (PWRKEY on, ``AT+CPOF`` off). The modem
is deaf for about 11 s after power-on, registers seconds after it hears a cell
of an operator that accepts the SIM profile's APN (or is rejected), scans slowly
for ``AT+COPS=?``, and gets a GNSS fix after a cold, warm or hot start, never
indoors. Voice calls, caller id, SMS and a reboot in the middle of a session
behave as on the real parts. Timings are scenario seconds (see Recorder).

The two families differ where the firmware must cope:
- SIM7600: GNSS by ``AT+CGPS=1``, ``+CGNSSINFO`` in NMEA ddmm.mmmm with 16
  fields, ``+CPSI`` LTE signal in tenths of dB, ``+CPIN: READY``; LTE, WCDMA, GSM.
- A7670: GNSS by ``AT+CGNSSPWR=1`` (then ``+CGNSSPWR: READY!``; ``ERROR`` on the
  A7670E-LASE, which has none), ``+CGNSSINFO`` in decimal degrees with 18 fields
  (trailing satellite count), ``+CPSI`` LTE signal as 3GPP report values; LTE, GSM.

Registration is reported per domain (+CREG, +CGREG, +CEREG URCs once enabled);
``AT+COPS=0`` answers at once. Closing the UART does not switch the modem off:
``AT+CPOF`` or the PWRKEY pulse (board bus) does.

The AT command set, what the modem answers and how long it takes, is
hwsim/modem_at.py; here is the modem's state over time, the world acting on
it and the UART.
"""
from __future__ import annotations

import asyncio
import random

from hwsim.energy import Meter
from hwsim.events import Recorder
from hwsim.modem_at import RATS, REG_NAMES, ATCommands
from hwsim.modem_call import CallModel
from hwsim.modem_net import NetCommands
from hwsim.modem_ssl import SslCommands
from hwsim.scenario import ModemSpec
from hwsim.world import World

UART_BYTES_S = 115200 / 10  # the board's UART: 115200 baud, 8N1 (hal/esp32.py)
HOT_WITHIN_S = 300.0       # ephemeris and position still in memory
WARM_WITHIN_S = 4 * 3600.0  # almanac and rough time still valid
TICK_S = 0.25
SMS_SEND_S = 3.0  # the network's answer to an SMS submission (the manual allows up to 60 s)
URC_HOLD_S = 2.0  # with interleaving on, the longest a URC waits for a command's answer to ride in


class ModemEmulator(SslCommands, NetCommands, ATCommands, CallModel):
    def __init__(self, world: World, spec: ModemSpec, rec: Recorder, meter: Meter | None = None):
        self.world, self.spec, self.rec = world, spec, rec
        self.now = rec.now
        self.meter = meter or Meter(rec.now)
        self.family = spec.family
        self.powered_at: float | None = None
        self.commands = 0
        self.last_fix_at: float | None = None  # survives power cycles: the GNSS keeps its almanac
        self._writer: asyncio.StreamWriter | None = None
        self.left_on = False  # the UART closed with no AT+CPOF nor PWRKEY pulse: still on, still drawing
        # seeded: URCs land between the lines of a command's answer (see serve)
        self._rng = random.Random(spec.urc_interleave_seed) if spec.urc_interleave_seed is not None else None
        self._held: list[tuple[float, str | bytes]] = []
        self._busy = False  # working on a command: URCs wait to go inside its answer
        self.certs: dict[str, bytes] = {}  # the modem's file system (AT+CCERTDOWN): kept across power cycles
        self._reset_state()

    def _reset_state(self) -> None:
        self.echo = True
        self.gnss_on_at: float | None = None
        self.gnss_ready_sent = False
        self.banner_sent = False
        self.reg_urc = [0, 0, 0]  # AT+CREG=, AT+CGREG=, AT+CEREG= <n>: URCs on when 1
        self.cvhu = 1  # AT+CVHU: 1 (the default) makes ATH leave voice calls alone
        self.manual_plmn: str | None = None
        self.selected_at = 0.0
        self.apn: str | None = None
        self.call: dict | None = None  # the call in progress (hwsim/modem_call.py)
        self.clcc = 0  # AT+CLCC=1: call state URCs
        self.sms: dict[int, tuple[str, str]] = {}
        self._last_stat: int | None = None
        self._last_stats: list[int | None] = [None, None, None]
        self._net_reset()
        self.ctzu_at: float | None = None  # AT+CTZU=1 (not kept across a power cycle)
        self.network_time = False  # the clock was set by NITZ this power-on

    # --- state as a function of time -------------------------------------------
    def booted(self) -> bool:
        return self.powered_at is not None and self.now() >= self.powered_at + self.spec.boot_s

    def _candidates(self):
        """Cells heard of the operator the modem may register on, strongest first."""
        heard = [h for h in self.world.heard() if h.cell.rat in RATS[self.family]]
        if self.manual_plmn:
            return [h for h in heard if h.cell.mccmnc == self.manual_plmn]
        accepting = [h for h in heard if self._accepts(h.cell.mccmnc)]
        return accepting or heard

    def _accepts(self, plmn: str) -> bool:
        op = self.world.operator(plmn)
        return not op.apns or (self.apn is not None and self.apn in op.apns)

    def reg_stat(self) -> int:
        """3GPP registration status: 0 not searching, 1 home, 2 searching, 3 denied, 5 roaming."""
        if not self.booted() or not self.spec.sim:
            return 0  # no SIM: it camps for emergency calls but never registers
        self.world.check_coverage()
        cands = self._candidates()
        if not cands:
            return 2
        if self.now() < self._registers_at():
            return 2
        if not self._accepts(cands[0].cell.mccmnc):
            return 3
        return 1

    def domain_stat(self, kind: int) -> int:
        """The stat of one registration domain: 0 +CREG, 1 +CGREG, 2 +CEREG. On an LTE
        cell all three say registered (combined attach); on a GSM or WCDMA cell
        the LTE domain is not registered (0)."""
        stat = self.reg_stat()
        if stat in (1, 5) and kind == 2 and self.serving().cell.rat != "LTE":
            return 0
        return stat

    def _registers_at(self) -> float:
        since = max(self.powered_at + self.spec.boot_s, self.world.coverage_since, self.selected_at)
        return since + self.spec.register_s

    def registered(self) -> bool:
        return self.reg_stat() in (1, 5)

    def serving(self):
        if not self.registered():
            return None
        return self._candidates()[0]

    def data_ready(self) -> bool:
        """The data link can pass traffic: registered on a network that carries data."""
        s = self.serving()
        return s is not None and self.world.operator(s.cell.mccmnc).data

    def ttff(self) -> float:
        if self.spec.ttff_s is not None:
            return self.spec.ttff_s
        if self.last_fix_at is None or self.gnss_on_at - self.last_fix_at > WARM_WITHIN_S:
            return self.spec.ttff_cold_s
        if self.gnss_on_at - self.last_fix_at > HOT_WITHIN_S:
            return self.spec.ttff_warm_s
        return self.spec.ttff_hot_s

    def has_fix(self) -> bool:
        if self.gnss_on_at is None or not self.booted():
            return False
        _, _, indoors = self.world.position()
        if indoors or self.world.in_hole():
            return False
        return self.now() >= self.gnss_on_at + self.ttff()

    # --- the world acting on the modem (calls: hwsim/modem_call.py) ----------------------
    def incoming_sms(self, sender: str, text: str) -> None:
        if not self.registered():
            return
        idx = max(self.sms, default=0) + 1
        self.sms[idx] = (sender, text)
        self.rec.record("sms", state="received", sender=sender, index=idx)
        self._urc(f'+CMTI: "SM",{idx}')

    def reboot(self) -> None:
        """The modem resets by itself (brown-out, firmware crash): it forgets everything."""
        if self.powered_at is None:
            return
        if self.call:
            self._end_call("modem reboot")
        self._reset_state()
        self.powered_at = self.now()
        self.rec.record("modem", state="rebooting")

    # --- the UART -----------------------------------------------------------------
    def _urc(self, line: str | bytes) -> None:
        # An event while the modem works on a command lands inside that command's
        # answer, as on the real modem; with urc_interleave_seed, others are held
        # (up to URC_HOLD_S) to ride inside the next answer too.
        if self._busy or (self._rng is not None and self._rng.random() < 0.5):
            self._held.append((self.now(), line))
            return
        self._write_urc(line)

    def _write_urc(self, line: str | bytes) -> None:
        # bytes: a URC that carries data ("+CCHRECV: DATA,..." and its raw bytes), framed already
        w = self._writer
        if w is not None and not w.is_closing():
            w.write(line if isinstance(line, bytes) else b"\r\n" + line.encode() + b"\r\n")

    def _with_held(self, out: list[str]) -> list[str]:
        """The answer with the URCs held meanwhile between its lines, before the final one."""
        held, self._held = self._held, []
        for _, urc in held:
            # without a seed: just before the final result, the hardest place for a reader
            out.insert(self._rng.randrange(len(out)) if self._rng else max(0, len(out) - 1), urc)
        return out

    def _before(self, out: list) -> list:
        """Socket answers carry raw bytes that no URC may split: held URCs go first."""
        held, self._held = self._held, []
        return [urc for _, urc in held] + out

    def _flush_held(self, older_than: float) -> None:
        while self._held and self._held[0][0] <= older_than:
            self._write_urc(self._held.pop(0)[1])

    def pwrkey_off(self) -> None:
        """PWRKEY held low (the power-off pulse of the hardware design manual):
        off, whatever the UART is doing."""
        if self.powered_at is None:
            return
        w, self._writer = self._writer, None
        self._switch_off("pwrkey")
        if w is not None:
            w.close()

    def _switch_off(self, how: str) -> None:
        if self.call:
            self._end_call("modem off")
        self._net_reset()  # its bearer and sockets go with the power
        self.powered_at, self.gnss_on_at, self.left_on = None, None, False
        self.rec.record("modem", state="off", how=how)
        self._power()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:  # one UART: a second open is a power cycle
            if self.powered_at is not None:
                # never switched off since the last power-on: it stayed on, drawing current
                self.rec.record("modem", state="left on")
            self._writer.close()
        self._reset_state()
        self.powered_at, self._writer = self.now(), writer
        self.left_on, self._held = False, []
        self.rec.record("modem", state="power on", family=self.family)
        ticker = asyncio.create_task(self._tick())
        buf = b""
        cpof = False
        try:
            while data := await reader.read(256):
                buf += data
                while b"\r" in buf:
                    raw, buf = buf.split(b"\r", 1)
                    line = raw.strip(b"\n ").decode(errors="replace")
                    if not line or not self.booted() or not self.spec.answers:
                        continue  # a modem still booting (or a dead one) hears nothing
                    self.commands += 1
                    cmd = line.strip().upper()
                    if self.echo:
                        writer.write(b"\r\n" + line.encode() + b"\r\n")
                    self._busy = True
                    await asyncio.sleep(self.rec.real(self.duration(cmd)))
                    if not self.booted():
                        self._busy = False
                        continue  # it rebooted while we waited
                    if cmd.startswith("AT+CMGS="):
                        buf = await self._send_sms(reader, writer, line, buf)
                        self._busy = False
                        continue
                    size = self.net_prompt(line.strip())
                    if size is not None:  # AT+CIPSEND: the prompt, then exactly size raw bytes
                        # What came before the prompt (the command's line feed) is not data.
                        lf_due = not buf.startswith(b"\n")
                        buf = b""
                        writer.write(b"\r\n>")
                        while len(buf) < size and (data := await reader.read(256)):
                            if lf_due:
                                lf_due, data = False, data[1:] if data[:1] == b"\n" else data
                            buf += data
                        payload, buf = buf[:size], buf[size:]
                        await asyncio.sleep(self.rec.real(size / UART_BYTES_S))  # the payload's time on the line
                        out = self._before(self.net_send(line.strip(), payload))
                    else:
                        # socket data is never split by a held URC: only AT answers carry them
                        net = self.net_answer(line)
                        out = self._before(net) if net else self._with_held(self.answer(line))
                    # bytes (socket data) go as they are, lines with their CR LF
                    blob = b"".join(ln if isinstance(ln, bytes) else b"\r\n" + ln.encode() + b"\r\n" for ln in out)
                    if len(blob) > 64:  # a long answer (socket data, a scan) takes its time on the line
                        await asyncio.sleep(self.rec.real(len(blob) / UART_BYTES_S))
                    writer.write(blob)
                    self._busy = False
                    await writer.drain()
                    if cmd == "AT+CPOF":
                        cpof = True
                        return
        except (ConnectionError, OSError):
            pass
        finally:
            self._busy = False
            ticker.cancel()
            if self._writer is writer:
                self._writer = None
                if cpof:
                    self._switch_off("AT+CPOF")
                else:
                    # Closing a UART switches nothing off: the modem stays on
                    # (drawing current) until a PWRKEY pulse or the next power-on.
                    self.left_on = True
                    self.rec.record("modem", state="left on")
                    self._power()
                if not writer.is_closing():
                    writer.close()

    async def _send_sms(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        line: str, buf: bytes) -> bytes:
        """AT+CMGS="<number>" in text mode (AT+CMGF=1): the "> " prompt, the text up
        to Ctrl-Z (ESC abandons it), then "+CMGS: <mr>" and OK, or "+CMS ERROR" with
        no network. Returns what the UART holds after the Ctrl-Z."""
        writer.write(b"\r\n> ")
        await writer.drain()
        buf = buf.lstrip(b"\n")
        while b"\x1a" not in buf and b"\x1b" not in buf:
            data = await reader.read(256)
            if not data:
                return b""
            buf += data
        ends = [i for i in (buf.find(b"\x1a"), buf.find(b"\x1b")) if i >= 0]
        end = min(ends)
        text, abandoned, rest = buf[:end].decode(errors="replace"), buf[end] == 0x1B, buf[end + 1:]
        await asyncio.sleep(self.rec.real(len(text) / UART_BYTES_S + (0 if abandoned else SMS_SEND_S)))
        out = self._with_held(self.sms_send(line, text, abandoned))
        writer.write(b"".join(b"\r\n" + ln.encode() + b"\r\n" for ln in out))
        await writer.drain()
        return rest

    async def _tick(self) -> None:
        """What the modem says on its own: boot banners, registration, calls, GNSS ready."""
        while True:
            self._unsolicited()
            self.net_watch()
            self._power()
            await asyncio.sleep(max(0.01, self.rec.real(TICK_S)))

    def _unsolicited(self) -> None:
        if not self.booted() or not self.spec.answers:
            return
        self._flush_held(self.now() - URC_HOLD_S)
        if not self.banner_sent:
            self.banner_sent = True
            self.rec.record("modem", state="booted")
            if self.family == "A7670":
                self._urc("*ATREADY: 1")
            self._urc("RDY")
            self._urc(self.spec.cpin if self.spec.sim else "+CPIN: SIM REMOVED")
            self._urc("SMS DONE")
            self._urc("PB DONE")
        stat = self.reg_stat()
        if stat != self._last_stat:
            if self._last_stat is not None or stat in (1, 5):
                self.rec.record("modem", state={1: "registered", 5: "registered", 3: "denied"}.get(stat, "searching"))
            self._last_stat = stat
        for kind, name in enumerate(REG_NAMES):  # each domain its URC, when enabled and changed
            s = self.domain_stat(kind)
            if s != self._last_stats[kind]:
                self._last_stats[kind] = s
                if self.reg_urc[kind]:
                    self._urc(f"{name}: {s}")
        if (self.family == "A7670" and self.gnss_on_at is not None and not self.gnss_ready_sent
                and self.now() >= self.gnss_on_at + 1.0):
            self.gnss_ready_sent = True
            self._urc("+CGNSSPWR: READY!")
        self._call_tick()

    def _power(self) -> None:
        m = self.meter
        if self.powered_at is None:
            m.set("modem", "off")
        elif not self.booted():
            m.set("modem", "booting")
        elif self.call and self.call["stat"] == 0:  # active
            m.set("modem", "call")
        elif self.registered():
            m.set("modem", "idle")
        else:
            m.set("modem", "searching")
        if self.gnss_on_at is None or self.powered_at is None:
            m.set("gnss", "off")
        else:
            m.set("gnss", "tracking" if self.has_fix() else "acquiring")
