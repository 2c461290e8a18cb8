# What the wearer sees and feels. The display sleeps DISPLAY_MS after the last
# text unless the text must stay (an alarm in progress, a message to confirm):
# the screen is one of the biggest loads after the radio.
import asyncio

DISPLAY_MS = 8000
FACE_BATTERY_AFTER_MS = 3000
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def civil(unix_s):
    # (y, m, d, hh, mm, weekday 0=Monday) of unix seconds, UTC, with no mktime.
    days, rem = divmod(unix_s, 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return y, m, d, rem // 3600, rem % 3600 // 60, (days + 3) % 7


def face_text(unix_s):
    if unix_s is None:
        return "--:--"
    y, m, d, hh, mm, wd = civil(unix_s)
    return "%02d:%02d %s %d %s" % (hh, mm, DAYS[wd], d, MONTHS[m - 1])


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
            asyncio.create_task(self._sleep_later(self._gen, DISPLAY_MS))

    def unpin(self):
        if self.pinned:
            self.pinned = False
            self._gen += 1
            asyncio.create_task(self._sleep_later(self._gen, DISPLAY_MS))

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
        self.show(face_text(self.clock.wall()))
        gen = self._gen
        await self.clock.sleep_ms(FACE_BATTERY_AFTER_MS)
        if gen == self._gen:
            b = self.board.battery()
            self.show("Battery %d%%" % b.get("pct", 0))
