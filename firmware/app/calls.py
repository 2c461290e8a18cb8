# Voice calls. The call centre calls back through the cloud (`call` command:
# the watch dials) or rings the watch: its number is answered at once, so a
# wearer who cannot move is still heard. Whitelisted numbers ring and the black
# button answers. In kids mode anyone else is hung up on (and their SMS
# deleted); otherwise an unknown caller rings like any phone.
import asyncio
from app import at

DIAL_WAIT_MS = 90000


class Calls:
    def __init__(self, watch):
        self.w = watch
        self.state = None      # None | "incoming" | "dialing" | "active"
        self.number = None

    def active(self):
        return self.state is not None

    def ringing(self):
        return self.state == "incoming"

    def _allowed(self, number):
        cfg = self.w.cfg
        return number == cfg.get("callcenter_number") or number in (cfg.get("whitelist") or [])

    async def dial(self, number, need_network=True):
        radio = self.w.radio
        radio.want("call")
        try:
            if need_network:
                await self.w.clock.wait_for_ms(radio.up.wait(), DIAL_WAIT_MS)
            m = radio.modem
            if m is not None and m.ready:
                self.state, self.number = "dialing", number
                if await m.dial(number):
                    print("call: dialling", number)
                    self.w.board.audio("on")
                    return  # the call holds the radio until VOICE CALL: END
        except asyncio.TimeoutError:
            print("call: no network to dial", number)
        self._ended()

    async def answer(self):
        m = self.w.radio.modem
        ok = m is not None and await m.answer()
        # The caller may hang up while ATA is on its way: "NO CARRIER" is then
        # ATA's answer, or the call-end URC was handled before ATA's OK. Either
        # way the call is over, and the next caller must find the watch free.
        if not ok:
            self._ended()
        elif self.state == "incoming":
            self.state = "active"
            self.w.board.audio("on")
            self.w.ui.show("In call")

    def _ended(self):
        if self.state in ("active", "dialing"):
            self.w.board.audio("off")
        self.state, self.number = None, None
        self.w.radio.done("call")

    def urc(self, line):
        if line.startswith("+CLIP:"):
            number = at.clip_number(line)
            if self.state is not None or number is None:
                return  # the same call ringing again
            self._incoming(number)
        elif line.startswith("VOICE CALL: BEGIN"):
            self.state = "active"
            print("call: connected", self.number)
        elif line.startswith("VOICE CALL: END") or line == "NO CARRIER" or line.startswith("MISSED_CALL"):
            if self.state is not None:
                print("call: ended", self.number)
                self.w.ui.show("Call ended")
                self._ended()
        elif line.startswith("+CMTI:"):
            idx = at.cmti_index(line)
            if idx is not None:
                asyncio.create_task(self._sms(idx))

    def _incoming(self, number):
        cfg = self.w.cfg
        self.state, self.number = "incoming", number
        self.w.radio.want("call")
        if number == cfg.get("callcenter_number"):
            print("call: call centre calling, answering")
            asyncio.create_task(self.answer())
        elif self._allowed(number) or not cfg.get("kids_mode"):
            print("call: ringing", number)
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
