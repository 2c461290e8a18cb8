# The watch's message layout on a panel (hal/st7789.py): a title line in small
# type on a band of the state's colour, then the message in large type,
# wrapped at word boundaries: 32-pixel type when it fits in three lines, else
# 24-pixel (16 at worst) in as many lines as the panel holds. Colours say the alarm's state
# at a glance: red while help is being called, green once it is coming,
# amber for a warning (a cancelled alarm, a low battery).
from micropython import const
from hal.st7789 import rgb565

_TITLE_SCALE = const(2)
_TITLE_H = const(28)           # the band: 16-pixel type, 6 pixels above and below
_MARGIN = const(8)
_BODY_SCALES = (4, 3, 2)       # 32, 24, 16 pixels: the largest that fits in 3 lines
_BODY_LINES = const(3)

WHITE = const(0xFFFF)
BLACK = const(0x0000)
RED = rgb565(200, 0, 0)
GREEN = rgb565(0, 140, 40)
AMBER = rgb565(255, 176, 0)
GREY = rgb565(60, 60, 60)

# (start of the app's text, title, band colour, body background, body text)
# The app's texts are in app/alarm.py, app/routine.py; anything else is plain.
TONES = (
    ("Calling", "SOS", RED, RED, WHITE),
    ("Help is coming", "HELP", GREEN, GREEN, WHITE),
    ("An operator", "HELP", GREEN, GREEN, WHITE),
    ("Cancelled", "CANCELLED", AMBER, BLACK, WHITE),
    ("Battery low", "BATTERY", AMBER, BLACK, WHITE),
    ("Battery empty", "BATTERY", AMBER, BLACK, WHITE),
)
PLAIN = ("OpenPERS", GREY, BLACK, WHITE)


def tone(text):
    for start, title, band, bg, fg in TONES:
        if text.startswith(start):
            return title, band, bg, fg
    return PLAIN


def wrap(text, width):
    # Lines of at most width characters, broken at spaces; a longer word is cut.
    lines = []
    line = ""
    for word in text.split():
        while len(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def fit(text, width_px, height_px):
    # (scale, lines): the largest type in which text fits, in at most
    # _BODY_LINES lines at the largest scale; else the smallest, cut to the
    # lines the height holds.
    for scale in _BODY_SCALES:
        lines = wrap(text, width_px // (8 * scale))
        if (len(lines) <= _BODY_LINES or scale < _BODY_SCALES[0]) and len(lines) * 9 * scale <= height_px:
            return scale, lines
    return scale, lines[:height_px // (9 * scale)]


def show(panel, text):
    title, band, bg, fg = tone(text)
    w, h = panel.width, panel.height
    panel.fill_rect(0, 0, w, _TITLE_H, band)
    panel.text(title, (w - 16 * len(title)) // 2, (_TITLE_H - 16) // 2, _TITLE_SCALE, WHITE, band)
    panel.fill_rect(0, _TITLE_H, w, h - _TITLE_H, bg)
    scale, lines = fit(text, w - 2 * _MARGIN, h - _TITLE_H - _MARGIN)
    step = 9 * scale                           # 8 rows of glyph (its last one blank), 1 of leading
    y = _TITLE_H + (h - _TITLE_H - step * len(lines)) // 2
    for line in lines:
        panel.text(line, (w - 8 * scale * len(line)) // 2, y, scale, fg, bg)
        y += step
    return scale, lines
