# The watch face's text: the time and the date, local (app/netclock.py). Loaded when the wearer
# asks for it (the black button): an alarm never needs it.
from micropython import const

# Three letters each, in one string: a tuple of strings loaded from the code
# image is one heap object per name.
_DAYS = const("MonTueWedThuFriSatSun")
_MONTHS = const("JanFebMarAprMayJunJulAugSepOctNovDec")


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
    return "%02d:%02d %s %d %s" % (hh, mm, _DAYS[3 * wd:3 * wd + 3], d, _MONTHS[3 * m - 3:3 * m])
