"""An emulator of a SIMCom LTE modem with GNSS (SIM7600 and A7670 families) on the watch's UART.

One UART connection is one power cycle (PWRKEY on, ``AT+CPOF`` off). The modem
is deaf for about 11 s after power-on, registers seconds after it hears a cell
of an operator that accepts the SIM profile's APN (or is rejected), scans slowly
for ``AT+COPS=?``, and gets a GNSS fix after a cold, warm or hot start, never
indoors. Voice calls, caller id, SMS and a reboot in the middle of a session
behave as on the real parts. Timings are scenario seconds (see Recorder).

The two families differ where the firmware must cope:
- SIM7600: GNSS by ``AT+CGPS=1``, ``+CGNSSINFO`` in NMEA ddmm.mmmm with 16
  fields, ``+CPSI`` signal in tenths of dB, ``+CPIN: READY``.
- A7670: GNSS by ``AT+CGNSSPWR=1`` (then ``+CGNSSPWR: READY!``), ``+CGNSSINFO``
  in decimal degrees with 18 fields (trailing satellite count), ``+CPSI`` in dB.
"""
from __future__ import annotations

import asyncio
import re
import time

from hwsim.energy import Meter
from hwsim.events import Recorder
from hwsim.scenario import ModemSpec
from hwsim.world import World

MODELS = {"SIM7600": "SIMCOM_SIM7600E-H", "A7670": "A7670E-LASE"}
RING_EVERY_S = 3.0
RING_GIVE_UP_S = 30.0
HOT_WITHIN_S = 300.0       # ephemeris and position still in memory
WARM_WITHIN_S = 4 * 3600.0  # almanac and rough time still valid
EMERGENCY = ("112", "911", "999", "000", "110", "118", "119")
TICK_S = 0.25


def _nmea(value: float, degree_digits: int) -> str:
    d = int(abs(value))
    minutes = (abs(value) - d) * 60
    return f"{d:0{degree_digits}d}{minutes:09.6f}"


class ModemEmulator:
    def __init__(self, world: World, spec: ModemSpec, rec: Recorder, meter: Meter | None = None):
        self.world, self.spec, self.rec = world, spec, rec
        self.now = rec.now
        self.meter = meter or Meter(rec.now)
        self.family = spec.family
        self.powered_at: float | None = None
        self.commands = 0
        self.last_fix_at: float | None = None  # survives power cycles: the GNSS keeps its almanac
        self._writer: asyncio.StreamWriter | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self.echo = True
        self.gnss_on_at: float | None = None
        self.gnss_ready_sent = False
        self.banner_sent = False
        self.cereg_urc = 0
        self.manual_plmn: str | None = None
        self.selected_at = 0.0
        self.apn: str | None = None
        self.call: dict | None = None  # {"state": dialing|active|incoming, "number", "since", ...}
        self.sms: dict[int, tuple[str, str]] = {}
        self._last_stat: int | None = None

    # --- state as a function of time -------------------------------------------
    def booted(self) -> bool:
        return self.powered_at is not None and self.now() >= self.powered_at + self.spec.boot_s

    def _candidates(self):
        """Cells heard of the operator the modem may register on, strongest first."""
        heard = self.world.heard()
        if self.manual_plmn:
            return [h for h in heard if h.cell.mccmnc == self.manual_plmn]
        accepting = [h for h in heard if self._accepts(h.cell.mccmnc)]
        return accepting or heard

    def _accepts(self, plmn: str) -> bool:
        op = self.world.operator(plmn)
        return not op.apns or (self.apn is not None and self.apn in op.apns)

    def reg_stat(self) -> int:
        """3GPP registration status: 0 not searching, 1 home, 2 searching, 3 denied, 5 roaming."""
        if not self.booted():
            return 0
        self.world.check_coverage()
        cands = self._candidates()
        if not cands:
            return 2
        if self.now() < self._registers_at():
            return 2
        if not self._accepts(cands[0].cell.mccmnc):
            return 3
        return 1

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

    # --- answers ------------------------------------------------------------------
    def duration(self, cmd: str) -> float:
        """Scenario seconds the modem takes before its final answer."""
        if cmd == "AT+COPS=?":
            return self.spec.cops_scan_s
        if cmd == "AT+COPS=0" and self.manual_plmn is None:
            # already in automatic mode: the answer comes when registration does
            left = self._registers_at() - self.now()
            return max(self.spec.answer_delay_s, min(left, self.spec.register_s + 0.5))
        if cmd.startswith("AT+COPS=1") or cmd.startswith("AT+COPS=0"):
            return self.spec.register_s + 0.5
        return self.spec.answer_delay_s

    def answer(self, line: str) -> list[str]:
        """The response lines to one command line, final result last."""
        raw = line.strip()
        cmd = raw.upper()
        if cmd in ("AT", "AT+CLIP=1", "AT+CMGF=1", "AT+CMEE=1", "AT+CNMI=2,1") or cmd.startswith("AT+CSCLK"):
            return ["OK"]
        if cmd in ("ATE0", "ATE1"):
            self.echo = cmd == "ATE1"
            return ["OK"]
        if cmd in ("ATI", "AT+CGMM"):
            return [MODELS[self.family], "OK"] if cmd == "AT+CGMM" else [
                "Manufacturer: SIMCOM INCORPORATED", f"Model: {MODELS[self.family]}", "OK"]
        if cmd == "AT+CPIN?":
            return [self.spec.cpin, "OK"]
        if cmd == "AT+CSQ":
            s = self.serving()
            n = max(0, min(31, (s.rssi + 113) // 2)) if s else 99
            return [f"+CSQ: {n},99", "OK"]
        if cmd.startswith("AT+CEREG=") or cmd.startswith("AT+CREG="):
            self.cereg_urc = int(cmd[-1]) if cmd[-1].isdigit() else 0
            return ["OK"]
        if cmd in ("AT+CEREG?", "AT+CREG?"):
            name = cmd[2:-1]
            return [f"{name}: {self.cereg_urc},{self.reg_stat()}", "OK"]
        if cmd == "AT+COPS?":
            s = self.serving()
            if s is None:
                return ["+COPS: 0", "OK"]
            return [f'+COPS: {1 if self.manual_plmn else 0},2,"{s.cell.mccmnc}",7', "OK"]
        if cmd == "AT+COPS=?":
            return [self._cops_list(), "", "OK"]
        if cmd == "AT+COPS=0":
            if self.manual_plmn is not None:  # leaving manual mode re-selects; auto stays put
                self.manual_plmn, self.selected_at = None, self.now() - self.spec.register_s - 0.5
            return ["OK"] if self.registered() else ["+CME ERROR: 30"]
        m = re.fullmatch(r'AT\+COPS=1,2,"(\d{5,6})"', cmd)
        if m:
            if m.group(1) != self.manual_plmn:
                self.manual_plmn = m.group(1)
                # the command's own wait was the registration
                self.selected_at = self.now() - self.spec.register_s - 0.5
            self.rec.record("modem", state="select", plmn=m.group(1))
            stat = self.reg_stat()
            if stat == 1:
                return ["OK"]
            return ["+CME ERROR: 111"] if stat == 3 else ["+CME ERROR: 30"]
        if cmd == "AT+COPS=2":
            self.manual_plmn = "00000"
            return ["OK"]
        m = re.fullmatch(r'AT\+CGDCONT=1,"IP","([^"]*)"', raw, re.IGNORECASE)
        if m:
            if m.group(1) != self.apn:
                self.apn = m.group(1)  # a new SIM profile: the network sees a new subscriber
                self.selected_at = max(self.selected_at, self.now() - self.spec.register_s - 0.5)
            return ["OK"]
        if cmd == "AT+CGDCONT?":
            return [f'+CGDCONT: 1,"IP","{self.apn or ""}","0.0.0.0",0,0', "OK"]
        if cmd == "AT+CPSI?":
            return [self._cpsi(), "OK"]
        if cmd in ("AT+CGPS=1", "AT+CGPS=1,1", "AT+CGNSSPWR=1"):
            if (cmd == "AT+CGNSSPWR=1") != (self.family == "A7670"):
                return ["ERROR"]
            if self.gnss_on_at is None:
                self.gnss_on_at, self.gnss_ready_sent = self.now(), False
                self.rec.record("gnss", state="on", ttff_s=self.ttff())
            return ["OK"]
        if cmd in ("AT+CGPS=0", "AT+CGNSSPWR=0"):
            if self.gnss_on_at is not None:
                self.rec.record("gnss", state="off")
            self.gnss_on_at = None
            return ["OK"]
        if cmd == "AT+CGNSSINFO":
            return [self._cgnssinfo(), "OK"]
        if cmd == "AT+CCLK?":
            if not self.registered():
                return ['+CCLK: "80/01/06,00:00:07+00"', "OK"]  # the modem's own epoch: not set
            return [time.strftime('+CCLK: "%y/%m/%d,%H:%M:%S+00"', time.gmtime(self.world.utc())), "OK"]
        if cmd.startswith("ATD") and cmd.endswith(";"):
            return self._dial(cmd[3:-1])
        if cmd == "ATA":
            if self.call and self.call["state"] == "incoming":
                self.call.update(state="active", since=self.now())
                self.rec.record("call", state="answered", number=self.call["number"])
                return ["OK", "VOICE CALL: BEGIN"]
            return ["NO CARRIER"]
        if cmd in ("ATH", "AT+CHUP"):
            if self.call:
                self._end_call("watch hung up")
            return ["OK"]
        m = re.fullmatch(r"AT\+CMGR=(\d+)", cmd)
        if m:
            msg = self.sms.get(int(m.group(1)))
            if msg is None:
                return ["+CMS ERROR: 321"]
            return [f'+CMGR: "REC UNREAD","{msg[0]}","",' + time.strftime('"%y/%m/%d,%H:%M:%S+00"', time.gmtime(self.world.utc())),
                    msg[1], "OK"]
        m = re.fullmatch(r"AT\+CMGD=(\d+)", cmd)
        if m:
            gone = self.sms.pop(int(m.group(1)), None)
            if gone:
                self.rec.record("sms", state="deleted", sender=gone[0])
            return ["OK"]
        if cmd == "AT+CPOF":
            return ["OK", "NORMAL POWER DOWN"]
        return ["ERROR"]

    def _cops_list(self) -> str:
        seen = []
        for h in self.world.heard():
            if h.cell.mccmnc not in [s[0] for s in seen]:
                seen.append((h.cell.mccmnc, h.cell.rat))
        ops = []
        for plmn, rat in seen:
            op = self.world.operator(plmn)
            serving = self.serving()
            stat = 2 if serving and serving.cell.mccmnc == plmn else 1
            name = op.name or plmn
            ops.append(f'({stat},"{name}","{name[:8]}","{plmn}",{7 if rat == "LTE" else 0})')
        return "+COPS: " + ",".join(ops) + ",,(0,1,2,3,4),(0,1,2)"

    def _cpsi(self) -> str:
        s = self.serving()
        if s is None:
            return "+CPSI: NO SERVICE,Online"
        c, rssi = s.cell, s.rssi
        if c.rat == "GSM":
            return f"+CPSI: GSM,Online,{c.mcc:03d}-{c.mnc:02d},0x{c.tac:04X},{c.cid},27 EGSM 900,{rssi},2110,42-42"
        rsrp = rssi - 20
        if self.family == "SIM7600":  # tenths of dB
            return (f"+CPSI: LTE,Online,{c.mcc:03d}-{c.mnc:02d},0x{c.tac:04X},{c.cid},262,EUTRAN-BAND20,"
                    f"6300,5,5,-94,{rsrp * 10},{rssi * 10},15")
        return (f"+CPSI: LTE,Online,{c.mcc:03d}-{c.mnc:02d},0x{c.tac:04X},{c.cid},262,EUTRAN-BAND20,"
                f"6300,5,5,-9,{rsrp},{rssi},15")

    def _cgnssinfo(self) -> str:
        if not self.has_fix():
            return "+CGNSSINFO: " + "," * (15 if self.family == "SIM7600" else 17)
        self.last_fix_at = self.now()
        lat, lon, _ = self.world.position()
        utc = time.gmtime(self.world.utc())
        date, tod = time.strftime("%d%m%y", utc), time.strftime("%H%M%S", utc)
        h = self.spec.hdop
        ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
        if self.family == "SIM7600":
            return (f"+CGNSSINFO: 2,06,03,00,{_nmea(lat, 2)},{ns},{_nmea(lon, 3)},{ew},"
                    f"{date},{tod}.0,170.0,0.0,0.0,{h + 0.4:.1f},{h:.1f},{h + 0.3:.1f}")
        return (f"+CGNSSINFO: 3,07,03,02,01,{abs(lat):.7f},{ns},{abs(lon):.7f},{ew},"
                f"{date},{tod}.00,170.0,0.000,,{h + 0.4:.2f},{h:.2f},{h + 0.3:.2f},13")

    def _dial(self, number: str) -> list[str]:
        emergency = number in EMERGENCY
        self.rec.record("call", state="dial", number=number, emergency=emergency)
        if self.call:
            return ["ERROR"]
        if not self.registered() and not (emergency and self.world.heard()):
            self.rec.record("call", state="failed", number=number, reason="no network")
            return ["NO CARRIER"]
        self.call = {"state": "dialing", "number": number, "since": self.now(),
                     "answer_after": self.answer_after}
        return ["OK"]

    answer_after = 3.0  # the runner sets it from the scenario action

    def _end_call(self, why: str) -> None:
        c, self.call = self.call, None
        dur = int(self.now() - c.get("since", self.now())) if c["state"] == "active" else 0
        self.rec.record("call", state="end", number=c["number"], why=why, duration_s=dur)
        self._urc(f"VOICE CALL: END: {dur:06d}" if c["state"] == "active" else "NO CARRIER")

    # --- the world acting on the modem ----------------------------------------------
    def incoming_call(self, number: str) -> None:
        if self.booted() and self.registered() and self.call is None:
            self.call = {"state": "incoming", "number": number, "since": self.now(), "rung": -1e9}
            self.rec.record("call", state="incoming", number=number)

    def remote_hangup(self) -> None:
        if self.call:
            self._end_call("far end hung up")

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
    def _urc(self, line: str) -> None:
        w = self._writer
        if w is not None and not w.is_closing():
            w.write(b"\r\n" + line.encode() + b"\r\n")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:  # one UART: a second open is a power cycle
            self._writer.close()
        self._reset_state()
        self.powered_at, self._writer = self.now(), writer
        self.rec.record("modem", state="power on", family=self.family)
        ticker = asyncio.create_task(self._tick())
        buf = b""
        try:
            while data := await reader.read(256):
                buf += data
                while b"\r" in buf:
                    raw, buf = buf.split(b"\r", 1)
                    line = raw.strip(b"\n ").decode(errors="replace")
                    if not line or not self.booted():
                        continue  # a modem still booting hears nothing
                    self.commands += 1
                    cmd = line.strip().upper()
                    if self.echo:
                        writer.write(b"\r\n" + line.encode() + b"\r\n")
                    await asyncio.sleep(self.rec.real(self.duration(cmd)))
                    if not self.booted():
                        continue  # it rebooted while we waited
                    out = self.answer(line)
                    writer.write(b"".join(b"\r\n" + ln.encode() + b"\r\n" for ln in out))
                    await writer.drain()
                    if cmd == "AT+CPOF":
                        self.rec.record("modem", state="off")
                        return
        except (ConnectionError, OSError):
            pass
        finally:
            ticker.cancel()
            if self._writer is writer:
                self._writer = None
                if self.call:
                    self._end_call("modem off")
                self.powered_at, self.gnss_on_at = None, None
                self._power()
                if not writer.is_closing():
                    writer.close()

    async def _tick(self) -> None:
        """What the modem says on its own: boot banners, registration, calls, GNSS ready."""
        while True:
            self._unsolicited()
            self._power()
            await asyncio.sleep(max(0.01, self.rec.real(TICK_S)))

    def _unsolicited(self) -> None:
        if not self.booted():
            return
        if not self.banner_sent:
            self.banner_sent = True
            self.rec.record("modem", state="booted")
            if self.family == "A7670":
                self._urc("*ATREADY: 1")
            self._urc("RDY")
            self._urc(self.spec.cpin)
            self._urc("SMS DONE")
            self._urc("PB DONE")
        stat = self.reg_stat()
        if stat != self._last_stat:
            if self._last_stat is not None or stat in (1, 5):
                self.rec.record("modem", state={1: "registered", 5: "registered", 3: "denied"}.get(stat, "searching"))
            self._last_stat = stat
            if self.cereg_urc:
                self._urc(f"+CEREG: {stat}")
        if (self.family == "A7670" and self.gnss_on_at is not None and not self.gnss_ready_sent
                and self.now() >= self.gnss_on_at + 1.0):
            self.gnss_ready_sent = True
            self._urc("+CGNSSPWR: READY!")
        c = self.call
        if c is None:
            return
        if c["state"] == "dialing" and self.now() >= c["since"] + c["answer_after"]:
            c.update(state="active", since=self.now())
            self.rec.record("call", state="active", number=c["number"])
            self._urc("VOICE CALL: BEGIN")
        elif c["state"] == "incoming":
            if self.now() - c["since"] > RING_GIVE_UP_S:
                self.call = None
                self.rec.record("call", state="missed", number=c["number"])
                self._urc(f"MISSED_CALL: {time.strftime('%I:%M%p', time.gmtime(self.world.utc()))} {c['number']}")
            elif self.now() - c["rung"] >= RING_EVERY_S:
                c["rung"] = self.now()
                self._urc("RING")
                self._urc(f'+CLIP: "{c["number"]}",145,"",0,"",0')
        elif c["state"] == "active" and not self.registered():
            self._end_call("network lost")

    def _power(self) -> None:
        m = self.meter
        if self.powered_at is None:
            m.set("modem", "off")
        elif not self.booted():
            m.set("modem", "booting")
        elif self.call and self.call["state"] == "active":
            m.set("modem", "call")
        elif self.registered():
            m.set("modem", "idle")
        else:
            m.set("modem", "searching")
        if self.gnss_on_at is None or self.powered_at is None:
            m.set("gnss", "off")
        else:
            m.set("gnss", "tracking" if self.has_fix() else "acquiring")
