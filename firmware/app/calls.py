# Voice calls. The call centre calls back through the cloud (`call` command:
# the watch dials) or rings the watch: its number is answered at once, so a
# wearer who cannot move is still heard. Whitelisted numbers ring and the black
# button answers. In kids mode anyone else is hung up on (and their SMS
# deleted); otherwise an unknown caller rings like any phone.
#
# What the call is doing comes from the modem's own reports, never from what
# the watch asked (SIMCom A76XX and SIM7600 AT manuals: ATD, ATA, ATH, AT+CHUP,
# AT+CLCC): +CLCC (AT+CLCC=1 at bring-up) stat 2 dialling, 3 alerting (the far
# end rings), 4 incoming, 0 active, 6 disconnect; VOICE CALL: BEGIN when it
# connects; VOICE CALL: END: <HHMMSS>, how long it was connected, when it ends;
# BUSY, NO ANSWER or NO CARRIER when it ends unconnected. Each change goes to
# the cloud as a status with a "call" part (docs/protocol.md), the end with its
# outcome and duration. A call the watch rejects on its own (kids mode) is
# never reported.
import asyncio
from app import at

DIAL_WAIT_MS = 90000
# +CLCC <stat> -> the state reported (held 1 and waiting 5 are not used here)
_CLCC = {"0": "active", "2": "dialing", "3": "alerting", "4": "incoming"}


def end_seconds(line):
    # "VOICE CALL: END: 000214" (manuals: HHMMSS; "VOICE CALL:END:000017" in their
    # examples) -> 134; None when it does not say.
    digits = "".join(c for c in line[line.find("END") + 3:] if "0" <= c <= "9")
    if len(digits) != 6:
        return None
    return int(digits[:2]) * 3600 + int(digits[2:4]) * 60 + int(digits[4:])


def clcc_stat(line):
    # '+CLCC: 1,0,3,0,0,"+33400000000",145' -> "3" (the <stat> field), else None
    f = line[6:].split(",")
    return f[2].strip() if len(f) > 2 else None


class Calls:
    def __init__(self, watch):
        self.w = watch
        self.state = None      # None | "incoming" | "dialing" | "alerting" | "active"
        self.number = None
        self.out = False       # the watch dialled (else it was called)
        self.cid = None        # the cloud's call command that asked for it
        self.told = None       # the last state the cloud was told of this call
        self.since = None      # ticks when it connected
        self.audio = False

    def active(self):
        return self.state is not None

    def ringing(self):
        return self.state == "incoming"

    def _allowed(self, number):
        cfg = self.w.cfg
        return number == cfg.get("callcenter_number") or number in (cfg.get("whitelist") or [])

    async def dial(self, number, need_network=True, cid=None):
        if self.state is not None:
            print("call: already in a call, not dialling", number)
            return  # a second call-back while the first is on: the first goes on
        radio = self.w.radio
        radio.want("call")
        self.number, self.out, self.cid, self.told, self.since = number, True, cid, None, None
        answer = None
        try:
            if need_network:
                await self.w.clock.wait_for_ms(radio.up.wait(), DIAL_WAIT_MS)
            m = radio.modem
            if m is not None and m.ready:
                self.state = "dialing"
                self._audio("on")
                answer = await m.dial(number)
                if answer == "OK":
                    print("call: dialling", number)
                    if self.state == "dialing":
                        self._tell("dialing")
                    return  # the call holds the radio until it ends (urc)
        except asyncio.TimeoutError:
            print("call: no network to dial", number)
        # Refused at once (no network, BUSY...) or never dialled: the cloud hears it failed.
        self.state = "dialing"
        self._finish(answer or "NO CARRIER", None)

    async def answer(self):
        m = self.w.radio.modem
        ok = m is not None and await m.answer()
        # The caller may hang up while ATA is on its way: "NO CARRIER" is then
        # ATA's answer, or the call-end URC was handled before ATA's OK. Either
        # way the call is over, and the next caller must find the watch free.
        if not ok:
            if self.state is not None:
                self._finish("NO CARRIER", None)
        elif self.state == "incoming":
            self._connected()
            self.w.ui.show("In call")

    def _audio(self, state):
        on = state == "on"
        if on != self.audio:
            self.audio = on
            self.w.board.audio(state)

    def _connected(self):
        if self.since is None:
            self.since = self.w.clock.ticks_ms()
        self.state = "active"
        self._audio("on")
        print("call: connected", self.number)
        self._tell("active")

    def _finish(self, line, seconds):
        # The call is over: "completed" once it had connected, else what the modem said.
        if self.since is not None:
            end = "completed"
            if seconds is None:  # the modem gave no duration: the watch's own count
                seconds = self.w.clock.ticks_diff(self.w.clock.ticks_ms(), self.since) // 1000
        elif line == "BUSY":
            end = "busy"
        elif line == "NO ANSWER":
            end = "no_answer"
        elif self.out:
            end = "failed"
        else:
            end = "missed"
        if self.since is None:
            seconds = None
        print("call: ended", self.number, end, "" if seconds is None else seconds)
        if self.told is not None:
            self.w.ui.show("Call ended")
        if self.told is not None or self.out:
            self._tell("ended", end, seconds)
            self.w.radio.want("call_report")  # until the end is with the cloud
            asyncio.create_task(self.w._release_when_sent("call_report"))
        self._ended()

    def _ended(self):
        self._audio("off")
        self.state, self.number, self.cid, self.told, self.since = None, None, None, None, None
        self.w.radio.done("call")

    def _tell(self, state, end=None, seconds=None):
        # A status with the call's part: the cloud's timeline and case view.
        if state == self.told:
            return
        self.told = state
        call = {"state": state, "dir": "out" if self.out else "in"}
        if self.number:
            call["number"] = self.number
        if self.cid:
            call["cid"] = self.cid
        if end:
            call["end"] = end
        if seconds is not None:
            call["dur"] = seconds
        w = self.w
        msg = w.status_msg()
        msg["call"] = call
        w.outbox.put("status", msg)
        w.session.kick()

    def urc(self, line):
        if line.startswith("+CLIP:"):
            number = at.clip_number(line)
            if self.state is not None or number is None:
                return  # the same call ringing again
            self._incoming(number)
        elif line.startswith("+CLCC:"):
            state = _CLCC.get(clcc_stat(line))
            if self.state is None or state is None or state == "incoming":
                return  # +CLIP brings the caller's number: the call starts there
            if state == "active":
                self._connected()
            elif self.state != "active":  # the far end rings
                self.state = state
                self._tell(state)
        elif line.startswith("VOICE CALL:"):
            if "BEGIN" in line:
                if self.state is not None:
                    self._connected()
            elif self.state is not None:
                self._finish(line, end_seconds(line))
        elif line == "NO CARRIER" or line == "BUSY" or line == "NO ANSWER" or line.startswith("MISSED_CALL"):
            if self.state is not None:
                self._finish(line, None)
        elif line.startswith("+CMTI:"):
            idx = at.cmti_index(line)
            if idx is not None:
                asyncio.create_task(self._sms(idx))

    def _incoming(self, number):
        cfg = self.w.cfg
        self.state, self.number, self.out, self.cid, self.told, self.since = "incoming", number, False, None, None, None
        self.w.radio.want("call")
        if number == cfg.get("callcenter_number"):
            print("call: call centre calling, answering")
            self._tell("incoming")
            asyncio.create_task(self.answer())
        elif self._allowed(number) or not cfg.get("kids_mode"):
            print("call: ringing", number)
            self._tell("incoming")
            self.w.ui.show("Call from %s" % number, pin=True)
            self.w.ui.vibrate(1000)
        else:
            print("call: rejected", number)
            asyncio.create_task(self._reject())

    async def _reject(self):
        m = self.w.radio.modem
        if m is not None:
            await m.hangup()
        self.state, self.number = None, None
        self.w.radio.done("call")

    async def _sms(self, idx):
        m = self.w.radio.modem
        if m is None:
            return
        got = await m.read_sms(idx)
        if got is None:
            return
        sender, text = got
        if self.w.cfg.get("kids_mode") and not self._allowed(sender):
            print("sms: rejected from", sender)
        else:
            self.w.ui.show(text, pin=True)
            self.w.ui.vibrate(400)
        await m.delete_sms(idx)
