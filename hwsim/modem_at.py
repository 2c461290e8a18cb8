"""The emulated modem's AT command set: what it answers and how long it takes.

A mixin of ``ModemEmulator`` (hwsim/modem.py), which holds the state the
answers read and change. ``answer()`` looks a command up in two tables: the
commands without arguments by their exact text, then the commands with
arguments by pattern, in order; each has one small handler. Anything else is
``ERROR``.
"""
from __future__ import annotations

import re
import time

# AT+CGMM of each family when the scenario names no model (ModemSpec.model);
# "A7670E-LASE" is the A7670E without GNSS.
MODELS = {"SIM7600": "SIMCOM_SIM7600E-H", "A7670": "A7670E-FASE"}
RATS = {"SIM7600": ("LTE", "WCDMA", "GSM"), "A7670": ("LTE", "GSM")}  # the A7670E: LTE Cat 1, GSM fallback
REG_NAMES = ("+CREG", "+CGREG", "+CEREG")  # AT+CREG, AT+CGREG, AT+CEREG: domains 0, 1, 2

# Commands without arguments, by their upper-cased text: the handler's name,
# called with the command.
EXACT = {
    "AT": "_ok", "AT+CLIP=1": "_ok", "AT+CMGF=1": "_ok", "AT+CMEE=1": "_ok", "AT+CNMI=2,1": "_ok",
    "ATE0": "_echo", "ATE1": "_echo",
    "ATI": "_ident", "AT+CGMM": "_ident",
    "AT+CPIN?": "_cpin",
    "AT+CSQ": "_csq",
    "AT+CEREG?": "_reg_query", "AT+CREG?": "_reg_query", "AT+CGREG?": "_reg_query",
    "AT+CVHU=0": "_cvhu", "AT+CVHU=1": "_cvhu",
    "AT+COPS?": "_cops_query",
    "AT+COPS=?": "_cops_scan",
    "AT+COPS=0": "_cops_auto",
    "AT+COPS=2": "_cops_deregister",
    "AT+CGDCONT?": "_cgdcont_query",
    "AT+CPSI?": "_cpsi_query",
    "AT+CGPS=1": "_gnss_on", "AT+CGPS=1,1": "_gnss_on", "AT+CGNSSPWR=1": "_gnss_on",
    "AT+CGPS=0": "_gnss_off", "AT+CGNSSPWR=0": "_gnss_off",
    "AT+CGNSSINFO": "_gnss_info",
    "AT+CCLK?": "_cclk",
    "AT+CTZU=1": "_ctzu", "AT+CTZU=0": "_ctzu",
    "ATA": "_ata",
    "AT+CLCC": "_clcc_list", "AT+CLCC?": "_clcc_query",
    "ATH": "_hang_up", "AT+CHUP": "_hang_up",
    "AT+CPOF": "_cpof",
}
# Commands with arguments, tried in this order: (pattern, matched against the
# raw line rather than the upper-cased one, the handler's name), the handler
# called with the match. No exact command above matches any of these.
PATTERNS = (
    (re.compile(r"AT\+CSCLK.*", re.S), False, "_ok"),
    (re.compile(r"AT\+C[EG]?REG=.*", re.S), False, "_reg_urc"),
    (re.compile(r'AT\+COPS=1,2,"(\d{5,6})"'), False, "_cops_manual"),
    # the raw line: the APN keeps its case
    (re.compile(r'AT\+CGDCONT=1,"IP","([^"]*)"', re.IGNORECASE), True, "_cgdcont_set"),
    (re.compile(r"ATD(.*);", re.S), False, "_atd"),
    (re.compile(r"AT\+CLCC=([01])"), False, "_clcc_set"),
    (re.compile(r"AT\+CMGR=(\d+)"), False, "_cmgr"),
    (re.compile(r"AT\+CMGD=(\d+)"), False, "_cmgd"),
)


def _nmea(value: float, degree_digits: int) -> str:
    d = int(abs(value))
    minutes = (abs(value) - d) * 60
    return f"{d:0{degree_digits}d}{minutes:09.6f}"


class ATCommands:
    def duration(self, cmd: str) -> float:
        """Scenario seconds the modem takes before its final answer."""
        if cmd == "AT+COPS=?":
            return self.spec.cops_scan_s
        # AT+COPS=0 answers OK at once; the registration follows as +CREG/+CGREG/
        # +CEREG URCs. AT+COPS=1 (manual) answers after the registration attempt.
        if cmd.startswith("AT+COPS=1"):
            return self.spec.register_s + 0.5
        late = self.spec.late_every and self.commands % self.spec.late_every == 0
        return self.spec.answer_delay_s + (self.spec.late_answer_s if late else 0.0)

    def answer(self, line: str) -> list[str]:
        """The response lines to one command line, final result last."""
        raw = line.strip()
        cmd = raw.upper()
        name = EXACT.get(cmd)
        if name is not None:
            return getattr(self, name)(cmd)
        for pattern, on_raw, name in PATTERNS:
            m = pattern.fullmatch(raw if on_raw else cmd)
            if m:
                return getattr(self, name)(m)
        return ["ERROR"]

    # --- general ------------------------------------------------------------------
    def _ok(self, _cmd) -> list[str]:
        return ["OK"]

    def _echo(self, cmd: str) -> list[str]:
        self.echo = cmd == "ATE1"
        return ["OK"]

    def _ident(self, cmd: str) -> list[str]:
        model = self.spec.model or MODELS[self.family]
        if cmd == "AT+CGMM":
            return [model, "OK"]
        # ATI as published transcripts of the modules show it
        if self.family == "A7670":
            return ["Manufacturer: INCORPORATED", f"Model: {model}", "Revision: A7670M7_V1.11.1",
                    "IMEI: 862205057937775", "+GCAP: +CGSM,+FCLASS,+DS", "OK"]
        return ["Manufacturer: SIMCOM INCORPORATED", f"Model: {model}", "Revision: SIM7600M22_V1.1",
                "IMEI: 867584034313614", "+GCAP: +CGSM", "OK"]

    def _cpin(self, _cmd: str) -> list[str]:
        if not self.spec.sim:
            return ["+CME ERROR: 10"]  # SIM not inserted (3GPP TS 27.007, with AT+CMEE=1)
        return [self.spec.cpin, "OK"]

    # --- the clock ------------------------------------------------------------------
    # The modem's clock runs from its own epoch at power-on until the network
    # sends its time (NITZ, in the MM/EMM information after attach, 3GPP TS
    # 24.008 9.2.15a) and automatic update is on (AT+CTZU=1, 3GPP TS 27.007
    # 8.40; SIMCom A76XX/SIM7600 AT manuals, AT+CTZU). AT+CCLK? gives local time
    # and the zone in quarter hours, "yy/MM/dd,hh:mm:ss±zz" (27.007 8.15).
    def _ctzu(self, cmd: str) -> list[str]:
        self.ctzu_at = self.now() if cmd.endswith("1") else None
        return ["OK"]

    def clock_set(self) -> bool:
        w = self.world.spec
        if self.network_time or not (w.nitz and self.ctzu_at is not None and self.registered()):
            return self.network_time
        nitz_at = self._registers_at() + w.nitz_after_s
        self.network_time = self.now() >= nitz_at and self.ctzu_at <= nitz_at
        if self.network_time:
            self.rec.record("modem", state="network time", zone_q=w.zone_q)
        return self.network_time

    def _cclk(self, _cmd: str) -> list[str]:
        if not self.clock_set():
            since = time.gmtime(315964800 + int(self.now() - (self.powered_at or 0.0)))
            return [time.strftime('+CCLK: "%y/%m/%d,%H:%M:%S+00"', since), "OK"]  # 1980-01-06 on
        zone = self.world.spec.zone_q
        local = time.gmtime(self.world.utc() + zone * 900)
        return [time.strftime('+CCLK: "%y/%m/%d,%H:%M:%S', local) + f'{zone:+03d}"', "OK"]

    def _cpof(self, _cmd: str) -> list[str]:
        return ["OK", "NORMAL POWER DOWN"]

    # --- the network --------------------------------------------------------------
    def _csq(self, _cmd: str) -> list[str]:
        s = self.serving()
        n = max(0, min(31, (s.rssi + 113) // 2)) if s else 99
        return [f"+CSQ: {n},99", "OK"]

    def _reg_urc(self, m: re.Match) -> list[str]:
        cmd = m.group(0)
        name, _, n = cmd[2:].partition("=")
        self.reg_urc[REG_NAMES.index(name)] = int(n) if n.isdigit() else 0
        return ["OK"]

    def _reg_query(self, cmd: str) -> list[str]:
        kind = REG_NAMES.index(cmd[2:-1])
        return [f"{cmd[2:-1]}: {self.reg_urc[kind]},{self.domain_stat(kind)}", "OK"]

    def _cvhu(self, cmd: str) -> list[str]:
        self.cvhu = int(cmd[-1])
        return ["OK"]

    def _cops_query(self, _cmd: str) -> list[str]:
        s = self.serving()
        if s is None:
            return ["+COPS: 0", "OK"]
        return [f'+COPS: {1 if self.manual_plmn else 0},2,"{s.cell.mccmnc}",7', "OK"]

    def _cops_scan(self, _cmd: str) -> list[str]:
        return [self._cops_list(), "", "OK"]

    def _cops_auto(self, _cmd: str) -> list[str]:
        if self.manual_plmn is not None:  # leaving manual mode re-selects; auto stays put
            self.manual_plmn, self.selected_at = None, self.now()
        return ["OK"]

    def _cops_manual(self, m: re.Match) -> list[str]:
        # The command's own wait (duration) was the registration attempt.
        self.manual_plmn = m.group(1)
        self.selected_at = min(self.selected_at, self.now() - self.spec.register_s - 0.5)
        self.rec.record("modem", state="select", plmn=m.group(1))
        stat = self.reg_stat()
        if stat == 1:
            return ["OK"]
        return ["+CME ERROR: 111"] if stat == 3 else ["+CME ERROR: 30"]

    def _cops_deregister(self, _cmd: str) -> list[str]:
        self.manual_plmn = "00000"
        return ["OK"]

    def _cgdcont_set(self, m: re.Match) -> list[str]:
        if m.group(1) != self.apn:
            self.apn = m.group(1)  # a new SIM profile: the network sees a new subscriber
            self.selected_at = max(self.selected_at, self.now())  # registers register_s from now
        return ["OK"]

    def _cgdcont_query(self, _cmd: str) -> list[str]:
        return [f'+CGDCONT: 1,"IP","{self.apn or ""}","0.0.0.0",0,0', "OK"]

    def _cpsi_query(self, _cmd: str) -> list[str]:
        return [self._cpsi(), "OK"]

    def _cops_list(self) -> str:
        seen = []
        for h in self.world.heard():
            if h.cell.rat not in RATS[self.family]:
                continue  # a band this family has no radio for
            if h.cell.mccmnc not in [s[0] for s in seen]:
                seen.append((h.cell.mccmnc, h.cell.rat))
        ops = []
        for plmn, rat in seen:
            op = self.world.operator(plmn)
            serving = self.serving()
            stat = 2 if serving and serving.cell.mccmnc == plmn else 1
            name = op.name or plmn
            act = {"LTE": 7, "WCDMA": 2}.get(rat, 0)
            ops.append(f'({stat},"{name}","{name[:8]}","{plmn}",{act})')
        return "+COPS: " + ",".join(ops) + ",,(0,1,2,3,4),(0,1,2)"

    def _cpsi(self) -> str:
        s = self.serving()
        if s is None:
            return "+CPSI: NO SERVICE,Online"
        c, rssi = s.cell, s.rssi
        head = f"+CPSI: {c.rat},Online,{c.mcc:03d}-{c.mnc:02d},0x{c.tac:04X},{c.cid}"
        if c.rat == "GSM":  # both manuals: <Absolute RF Ch Num>,<RxLev> dBm,<Track LO Adjust>,<C1-C2>
            return f"{head},27 EGSM 900,{rssi},2110,42-42"
        if c.rat == "WCDMA":  # SIM7600: <PSC>,<Freq>,<SSC>,<EC/IO>,<RSCP>,<Qual>,<RxLev>,<TXPWR>
            return f"{head},WCDMA IMT 2000,437,10687,0,-3,{rssi - 3},-32768,{rssi},-15"
        rsrp, rsrq = rssi - 20, -9.5
        if self.family == "SIM7600":  # SIM7600 manual: tenths of dB and dBm
            return f"{head},262,EUTRAN-BAND20,6300,5,5,{int(rsrq * 10)},{rsrp * 10},{rssi * 10},15"
        # A76XX manual: 3GPP report values (RSRQ 0..34, RSRP 0..97, RSSI 0..76; 255 unknown)
        q = int((rsrq + 20) * 2)
        p = max(0, min(97, rsrp + 140))
        r = max(0, min(76, rssi + 101))
        return f"{head},262,EUTRAN-BAND20,6300,5,5,{q},{p},{r},15"

    # --- GNSS ---------------------------------------------------------------------
    def _gnss_on(self, cmd: str) -> list[str]:
        if not self.spec.gnss:
            self.rec.record("gnss", state="refused", model=self.spec.model)
            return ["ERROR"]  # a variant with no GNSS
        if (cmd == "AT+CGNSSPWR=1") != (self.family == "A7670"):
            return ["ERROR"]
        if self.gnss_on_at is None:
            self.gnss_on_at, self.gnss_ready_sent = self.now(), False
            self.rec.record("gnss", state="on", ttff_s=self.ttff())
        return ["OK"]

    def _gnss_off(self, _cmd: str) -> list[str]:
        if self.gnss_on_at is not None:
            self.rec.record("gnss", state="off")
        self.gnss_on_at = None
        return ["OK"]

    def _gnss_info(self, _cmd: str) -> list[str]:
        if not self.spec.gnss:
            return ["ERROR"]
        return [self._cgnssinfo(), "OK"]

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

    # --- SMS (calls: hwsim/modem_call.py) --------------------------------------------
    def sms_send(self, cmd: str, text: str, abandoned: bool) -> list[str]:
        """The end of AT+CMGS: the text was typed (Ctrl-Z) or abandoned (ESC)."""
        m = re.fullmatch(r'AT\+CMGS="([^"]+)"(,\d+)?', cmd.strip(), re.I)
        if abandoned:
            return ["OK"]
        if m is None:
            return ["ERROR"]
        number = m.group(1)
        if not self.registered():
            self.rec.record("sms", state="failed", to=number, reason="no network")
            return ["+CMS ERROR: 331"]  # 331: no network service (3GPP TS 27.005)
        self.sms_ref = (getattr(self, "sms_ref", 0) + 1) % 256
        self.rec.record("sms", state="sent", to=number, text=text)
        return [f"+CMGS: {self.sms_ref}", "OK"]

    def _cmgr(self, m: re.Match) -> list[str]:
        msg = self.sms.get(int(m.group(1)))
        if msg is None:
            return ["+CMS ERROR: 321"]
        stamp = time.strftime('"%y/%m/%d,%H:%M:%S+00"', time.gmtime(self.world.utc()))
        return [f'+CMGR: "REC UNREAD","{msg[0]}","",' + stamp,
                msg[1], "OK"]

    def _cmgd(self, m: re.Match) -> list[str]:
        gone = self.sms.pop(int(m.group(1)), None)
        if gone:
            self.rec.record("sms", state="deleted", sender=gone[0])
        return ["OK"]
