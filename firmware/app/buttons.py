# The two buttons, from their edges (a pin interrupt on the board, a bus event
# in simulation), so nothing polls while the watch sleeps.
#   red held for hold_ms -> on_hold(): an SOS, so a knock against a door frame
#                           does not call the call centre
#   black released before LONG_MS -> on_click()
import asyncio
from micropython import const

_LONG_MS = const(1500)


class Buttons:
    def __init__(self, board, hold_ms, on_hold, on_click, on_red_down=None):
        self.board = board
        self.clock = board.clock
        self.hold_ms = hold_ms  # a function, so a new config applies to the next press
        self.on_hold = on_hold
        self.on_click = on_click
        self.on_red_down = on_red_down
        self._red_gen = 0
        self._black_down = None
        board.on_button(self._edge)

    def _edge(self, name, down):
        if name == "red":
            self._red_gen += 1
            if down:
                if self.on_red_down:
                    self.on_red_down()
                asyncio.create_task(self._held(self._red_gen))
        elif name == "black":
            now = self.clock.ticks_ms()
            if down:
                self._black_down = now
            elif self._black_down is not None:
                if self.clock.ticks_diff(now, self._black_down) < _LONG_MS:
                    self.on_click()
                self._black_down = None

    async def _held(self, gen):
        await self.clock.sleep_ms(self.hold_ms())
        # Still the same press and still down: a release in between bumped gen.
        if gen == self._red_gen and self.board.button("red"):
            self.on_hold()
