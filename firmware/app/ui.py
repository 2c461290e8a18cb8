# What the wearer sees and feels. The display sleeps DISPLAY_MS after the last
# text unless the text must stay (an alarm in progress, a message to confirm):
# the screen is one of the biggest loads after the radio.
import asyncio
from micropython import const

_DISPLAY_MS = const(8000)
_FACE_BATTERY_AFTER_MS = const(3000)


class UI:
    def __init__(self, board):
        self.board = board
        self.clock = board.clock
        self.text = None
        self.pinned = False
        self.on = False
        self._gen = 0

    def show(self, text, pin=False):
        self.text, self.pinned, self.on = text, pin, True
        self._gen += 1
        self.board.display(text)
        if not pin:
            asyncio.create_task(self._sleep_later(self._gen, _DISPLAY_MS))

    def unpin(self):
        if self.pinned:
            self.pinned = False
            self._gen += 1
            asyncio.create_task(self._sleep_later(self._gen, _DISPLAY_MS))

    async def _sleep_later(self, gen, ms):
        await self.clock.sleep_ms(ms)
        if gen == self._gen and not self.pinned and self.on:
            self.on = False
            self.board.display_off()

    def vibrate(self, ms):
        self.board.vibrate(ms)

    def display(self, text):
        # The alarm's texts stay on screen until the alarm moves on.
        self.show(text, pin=True)

    async def watch_face(self):
        from app.face import face_text  # only when the wearer asks for it
        from app.netclock import local
        self.show(face_text(local(self.clock)))
        gen = self._gen
        await self.clock.sleep_ms(_FACE_BATTERY_AFTER_MS)
        if gen == self._gen:
            b = self.board.battery()
            self.show("Battery %d%%" % b.get("pct", 0))
