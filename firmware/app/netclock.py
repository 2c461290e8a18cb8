# The wall clock. The ESP32 has no time of its own: its RTC starts at
# 2000-01-01 on power-up (hal: clock.wall() is None until set). The network's
# time (NITZ, which the modem keeps once AT+CTZU=1, read with AT+CCLK?) or a
# GNSS fix's UTC sets it; the zone the network gives (quarter hours, daylight
# saving included) makes local time, for reminders and the watch face. Until
# then messages carry no time (ts null: the cloud takes the receive time).
from app import at

_zone_s = [0]  # seconds east of UTC, from the last AT+CCLK? that had the time


def from_cclk(clock, line):
    # True when the modem had the network's time (else it answers its epoch).
    t = at.cclk(line)
    if t is None:
        return False
    clock.set_wall(t)
    _zone_s[0] = at.cclk_zone(line) * 900
    return True


def from_fix(clock, fix, age_ms):
    # A fix's UTC, when nothing better set the clock (GNSS gives no zone).
    ts = fix.get("ts") if fix else None
    if ts is not None and clock.wall() is None:
        clock.set_wall(ts + (age_ms or 0) // 1000)


def local(clock):
    w = clock.wall()
    return None if w is None else w + _zone_s[0]
