"""The emulated modem's voice calls: ``ATD``, ``ATA``, ``ATH``, ``AT+CHUP``,
``AT+CLCC``, ringing with caller id, and what the modem says as a call goes on.

From the SIMCom A76XX Series AT Command Manual V1.09 (2.2.1 ATD, 2.2.2 ATA,
2.2.3 ATH, 7.2.1 AT+CVHU, 7.2.2 AT+CHUP, 7.2.6 AT+CLCC) and the SIM7500/SIM7600
Series AT Command Manual V1.12 (3.2, 3.6, 3.7):

- ``ATD<n>;`` answers ``OK`` at once (``NO CARRIER`` with no network; 112 needs
  none); ``VOICE CALL: BEGIN`` follows when the far end answers.
- ``ATA`` answers ``OK`` then ``VOICE CALL: BEGIN``; ``NO CARRIER`` with no call.
- ``AT+CHUP`` ends a call whatever ``AT+CVHU`` says; ``ATH`` only after ``AT+CVHU=0``.
- A connected call ends with ``VOICE CALL: END: <time>``, the connection time as
  HHMMSS ("000214": 2 min 14 s); one that never connected with ``BUSY``, ``NO
  ANSWER`` or ``NO CARRIER`` (verbose result codes, manual 28.1).
- With ``AT+CLCC=1`` every change of state is reported as ``+CLCC:
  <id>,<dir>,<stat>,<mode>,<mpty>,"<number>",<type>``: dir 0 mobile originated,
  1 terminated; stat 2 dialing, 3 alerting, 4 incoming, 0 active, 6 disconnect;
  type 145 for a number with "+", else 129. ``AT+CLCC`` lists the call, ``AT+CLCC?``
  gives ``+CLCC: <n>``. The disconnect (stat 6) comes before the end line, as a
  captured A76XX session shows it (``+CLCC: 3,0,6,...`` then ``VOICE CALL: END: 000003``).

Who answers a call the watch dials is the world's: ``FarEndSpec`` (scenario
``[far_end]``): it answers after a while, is busy, or never answers (the network
gives up with ``NO ANSWER``), and may hang up after a while. Every time is
scenario time, checked at the modem's tick: deterministic under the hwsim clock.
"""
from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hwsim.scenario import FarEndSpec

if TYPE_CHECKING:
    from hwsim.events import Recorder
    from hwsim.world import World

EMERGENCY = ("112", "911", "999", "000", "110", "118", "119")
RING_EVERY_S = 3.0    # A76XX manual 2.2.2: RING every few seconds until answered
RING_GIVE_UP_S = 30.0  # the caller's network gives up: MISSED_CALL
# +CLCC <stat>
ACTIVE, DIALING, ALERTING, INCOMING, DISCONNECT = 0, 2, 3, 4, 6


class CallModel:
    """A mixin of ``ModemEmulator``: ``self.call`` is the call in progress, a dict
    {"dir", "stat", "number", "since" (this state), "dialled" (ATD), "far"}."""

    rec: Recorder
    world: World
    call: dict[str, Any] | None
    cvhu: int
    far_end: FarEndSpec = FarEndSpec()  # the runner sets the scenario's
    clcc = 0  # AT+CLCC=<n>: 1 reports every change of a call's state (not kept across a power cycle)

    # --- commands ---------------------------------------------------------------
    def _atd(self, m: re.Match) -> list[str]:
        return self._dial(m.group(1))

    def _dial(self, number: str) -> list[str]:
        emergency = number in EMERGENCY
        self.rec.record("call", state="dial", number=number, emergency=emergency)
        if self.call:
            return ["ERROR"]
        if not self.registered() and not (emergency and self.world.heard()):
            self.rec.record("call", state="failed", number=number, reason="no network")
            return ["NO CARRIER"]
        self.call = {"dir": 0, "stat": DIALING, "number": number, "since": self.now(), "dialled": self.now(),
                     "far": replace(self.far_end), "reported": None}
        return ["OK"]

    def _ata(self, _cmd: str) -> list[str]:
        c = self.call
        if c and c["stat"] == INCOMING:
            self._set_stat(ACTIVE)
            self.rec.record("call", state="answered", number=c["number"])
            return ["OK", "VOICE CALL: BEGIN"]
        return ["NO CARRIER"]

    def _hang_up(self, cmd: str) -> list[str]:
        # Both manuals: ATH ends a voice call only after AT+CVHU=0; with the
        # default AT+CVHU=1 it answers OK and the call goes on. AT+CHUP always ends it.
        if self.call and (cmd == "AT+CHUP" or self.cvhu == 0):
            self._end_call("watch hung up")
        elif self.call:
            self.rec.record("call", state="ATH ignored", number=self.call["number"])
        return ["OK"]

    def _clcc_set(self, m: re.Match) -> list[str]:
        self.clcc = int(m.group(1))
        return ["OK"]

    def _clcc_query(self, _cmd: str) -> list[str]:
        return [f"+CLCC: {self.clcc}", "OK"]

    def _clcc_list(self, _cmd: str) -> list[str]:
        return ([self._clcc_line(self.call)] if self.call else []) + ["OK"]

    @staticmethod
    def _clcc_line(c: dict[str, Any]) -> str:
        kind = 145 if c["number"].startswith("+") else 129
        return f'+CLCC: 1,{c["dir"]},{c["stat"]},0,0,"{c["number"]}",{kind}'

    # --- the call's life ------------------------------------------------------------
    def _set_stat(self, stat: int) -> None:
        c = self.call
        assert c is not None
        c.update(stat=stat, since=self.now())
        if self.clcc:
            self._urc(self._clcc_line(c))

    def _end_call(self, why: str, result: str = "NO CARRIER") -> None:
        """The call is over: +CLCC disconnect, then VOICE CALL: END: <HHMMSS> for a
        connected call, else ``result`` (BUSY, NO ANSWER, NO CARRIER)."""
        c = self.call
        if c is None:
            return
        connected = c["stat"] == ACTIVE
        dur = int(self.now() - c["since"]) if connected else 0
        self._set_stat(DISCONNECT)
        self.call = None
        self.rec.record("call", state="end", number=c["number"], why=why, duration_s=dur)
        h, rest = divmod(dur, 3600)
        self._urc(f"VOICE CALL: END: {h:02d}{rest // 60:02d}{rest % 60:02d}" if connected else result)

    def incoming_call(self, number: str) -> None:
        if self.booted() and self.registered() and self.call is None:
            self.call = {"dir": 1, "stat": INCOMING, "number": number, "since": self.now(), "rung": -1e9}
            self.rec.record("call", state="incoming", number=number)

    def remote_hangup(self) -> None:
        if self.call:
            self._end_call("far end hung up")

    def _call_tick(self) -> None:
        """What a call does on its own, at the modem's tick."""
        c = self.call
        if c is None:
            return
        now = self.now()
        if c["dir"] == 0 and c.get("reported") is None:
            c["reported"] = True
            if self.clcc:  # the dialling state, after ATD's OK
                self._urc(self._clcc_line(c))
        if c["dir"] == 0 and c["stat"] in (DIALING, ALERTING):
            self._far_end_tick(c, now)
        elif c["stat"] == INCOMING:
            if now - c["since"] > RING_GIVE_UP_S:
                self.call = None
                self.rec.record("call", state="missed", number=c["number"])
                self._urc(f"MISSED_CALL: {time.strftime('%I:%M%p', time.gmtime(self.world.utc()))} {c['number']}")
            elif now - c["rung"] >= RING_EVERY_S:
                first = c["rung"] < 0
                c["rung"] = now
                self._urc("RING")
                if first and self.clcc:
                    self._urc(self._clcc_line(c))
                self._urc(f'+CLIP: "{c["number"]}",145,"",0,"",0')
        elif c["stat"] == ACTIVE:
            far: FarEndSpec | None = c.get("far")
            if not self.registered():
                self._end_call("network lost")
            elif far is not None and far.hangup_after_s is not None and now >= c["since"] + far.hangup_after_s:
                self._end_call("far end hung up")

    def _far_end_tick(self, c: dict[str, Any], now: float) -> None:
        far: FarEndSpec = c["far"]
        waited = now - c["dialled"]
        if c["stat"] == DIALING and waited >= far.alert_after_s:
            self._set_stat(ALERTING)
            self.rec.record("call", state="alerting", number=c["number"])
        if far.answer == "busy" and waited >= far.answer_after_s:
            self._end_call("far end busy", "BUSY")
        elif far.answer == "no_answer" and waited >= far.no_answer_s:
            self._end_call("not answered", "NO ANSWER")
        elif far.answer == "answer" and waited >= far.answer_after_s:
            self._set_stat(ACTIVE)
            self.rec.record("call", state="active", number=c["number"])
            self._urc("VOICE CALL: BEGIN")
