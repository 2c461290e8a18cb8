"""The "3G"/SeTracker watch protocol: ``[MM*<id>*<len hex>*<content>]``.

MM names the maker (SG, 3G, CS, ZJ, ...) and the cloud answers in the same; some
watches put a 4-hex-digit index between the id and the length (``[ZJ*id*0075*0064*UD,...]``).
The length field is four hex digits of the content's length; watches get it wrong
(byte count of an older content, UTF-8 names in the Wi-Fi list), so a frame is
cut at its closing ``]`` when the length does not land on one: decoded anyway,
never dropped. Replies and commands (Traccar's WatchProtocolDecoder/Encoder):

- ``LK`` heartbeat -> ``LK``; ``AL*`` alarm -> ``AL``; ``UD*`` location: no reply;
- down: ``CR`` locate, ``CALL,<n>``, ``SOS,<n1>,<n2>,<n3>``, ``CENTER,<n>``,
  ``WHITELIST1,<n1..n5>``, ``FALLDOWN,<0|1>``, ``MESSAGE,<UTF-16BE hex>``; the watch
  answers each with a frame of the same keyword, which acks the command.

The status word of a position (hex, Traccar's decodeAlarm): bit 0 and 17 low
battery, 1/2 and 18/19 geofence, 4 moving, 14 external power cut (the charger
unplugged), 16 SOS, 20 taken off the wrist, 21/22 fall. SOS wins over every other
bit (Traccar reads low battery first: an SOS sent on a low battery would be lost).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from cloud.gateway.messages import CellInfo, Report, battery, unix

SOS_BIT = 1 << 16
FALL_BITS = (1 << 21) | (1 << 22)
LOW_BATTERY_BITS = (1 << 0) | (1 << 17)
# Bits that say something that is not an emergency: an AL frame carrying only these
# is stored as a position, replied to, and is no case (unplugging the charger is not an SOS).
NOT_AN_ALARM_BITS = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 14) | (1 << 18) | (1 << 19) | (1 << 20)

_HEADER = re.compile(rb"\[([A-Za-z0-9]{2})\*([0-9A-Za-z]{1,20})\*(?:([0-9A-Fa-f]{4})\*)?([0-9A-Fa-f]{4})\*")


class FrameError(ValueError):
    """Bytes that are no frame of this protocol: the connection is dropped."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Frame:
    maker: str
    imei: str
    index: str | None
    content: str
    length_ok: bool

    @property
    def type(self) -> str:
        return self.content.split(",", 1)[0]


def split(buf: bytearray, max_frame: int) -> list[Frame]:
    """Cut the complete frames off the front of ``buf`` (in place); what is left is
    an incomplete frame. FrameError for bytes that cannot start a frame, or a frame
    longer than ``max_frame``."""
    frames: list[Frame] = []
    while buf:
        if bytes(buf[0:1]) in (b"\r", b"\n", b" "):
            del buf[0]
            continue
        if buf[0:1] != b"[":
            raise FrameError("garbage")
        m = _HEADER.match(buf)
        if m is None:
            if len(buf) > 64 or (len(buf) > 1 and not re.fullmatch(rb"\[[A-Za-z0-9*]*", bytes(buf[:64]))):
                raise FrameError("bad_header")
            break  # the header is still arriving
        declared = int(m.group(4), 16)
        start = m.end()
        end = start + declared
        if len(buf) > end and buf[end:end + 1] == b"]":
            length_ok = True
        else:
            close = buf.find(b"]", start)
            if close < 0:
                if len(buf) > max_frame:
                    raise FrameError("oversize")
                if len(buf) <= end:
                    break  # the content is still arriving
                break
            end, length_ok = close, False
        if end + 1 > max_frame:
            raise FrameError("oversize")
        content = bytes(buf[start:end]).decode("utf-8", "replace")
        frames.append(Frame(m.group(1).decode(), m.group(2).decode(), m.group(3).decode() if m.group(3) else None,
                            content, length_ok))
        del buf[:end + 1]
    if len(buf) > max_frame:
        raise FrameError("oversize")
    return frames


def encode(maker: str, imei: str, index: str | None, content: str) -> bytes:
    """One frame to the watch, in the maker code and index form the watch used."""
    body = content.encode("utf-8")
    mid = f"{index}*" if index is not None else ""
    return f"[{maker}*{imei}*{mid}{len(body):04X}*".encode() + body + b"]"


def _num(value: str, default: float | None = None) -> float | None:
    try:
        return float(value.strip())
    except ValueError:
        return default


def _coord(value: str, hemisphere: str, negative: str) -> float | None:
    v = _num(value)
    if v is None:
        return None
    return -abs(v) if hemisphere == negative else v


def classify(status: int | None) -> tuple[str | None, str | None]:
    """(alarm kind or None, why not an alarm) of an AL frame's status word."""
    if status is None:
        return "sos", None  # an alarm frame nobody can read is an alarm
    if status & SOS_BIT:
        return "sos", None
    if status & FALL_BITS:
        return "fall", None
    if status & LOW_BATTERY_BITS:
        return "low_battery", None
    if status & NOT_AN_ALARM_BITS:
        what = "charger unplugged" if status & (1 << 14) else (
            "taken off the wrist" if status & (1 << 20) else "geofence or motion")
        return None, what
    return "sos", None  # an AL with no reason at all: older firmware's SOS press


def decode_position(content: str, kind: str) -> Report:
    """A UD*/AL*/WT frame: date, time, fix, position, status word, cells, Wi-Fi.
    Never raises: what cannot be read is left out (an alarm stays an alarm)."""
    rep = Report(kind=kind)
    f = content.split(",")[1:]
    status: int | None = None
    try:
        d, t = f[0], f[1]
        rep.ts = unix(2000 + int(d[4:6]), int(d[2:4]), int(d[0:2]), int(t[0:2]), int(t[2:4]), int(t[4:6]))
    except (IndexError, ValueError):
        pass
    try:
        rep.valid = f[2] == "A"
        rep.lat = _coord(f[3], f[4], "S")
        rep.lon = _coord(f[5], f[6], "W")
        sats = _num(f[10])
        rep.sats = int(sats) if sats is not None else None
        rep.batt = battery(f[12])
        status = int(f[15], 16)
    except (IndexError, ValueError):
        pass
    try:
        rest = f[16:]
        n_cells = int(rest[0])
        i = 2  # the count, then the timing advance
        if n_cells == 0 and len(rest) > 2 and not rest[2].strip().lstrip("-").isdigit():
            i = 1  # no cell, no timing advance: the Wi-Fi count follows at once
        if n_cells > 0:
            mcc, mnc = int(rest[i] or 0), int(rest[i + 1] or 0)
            i += 2
            for _ in range(n_cells):
                rep.cells.append(CellInfo(mcc, mnc, int(rest[i]), int(rest[i + 1])))
                i += 3
        if i < len(rest) and rest[i]:
            for _ in range(int(rest[i])):
                rep.wifi.append((rest[i + 2], int(rest[i + 3])))
                i += 3
    except (IndexError, ValueError):
        pass
    if kind == "alarm":
        rep.alarm, rep.note = classify(status)
        if rep.alarm is None:
            rep.kind = "location"
    return rep


def decode(frame: Frame) -> tuple[Report | None, str | None]:
    """(what the frame reports, the reply's content or None)."""
    kind = frame.type
    rest = frame.content.split(",")[1:]
    if kind == "LK":
        rep = Report(kind="heartbeat")
        if len(rest) >= 3:
            rep.batt = battery(rest[2])
        return rep, "LK"
    if kind.startswith("AL"):
        return decode_position(frame.content, "alarm"), "AL"
    if kind.startswith("UD") or kind == "WT":
        return decode_position(frame.content, "location"), None
    if kind.upper() in ("HEART", "PULSE") and rest:
        try:
            return Report(kind="heartbeat", hr=int(rest[-1])), None
        except ValueError:
            return None, None
    if kind in ("TKQ", "TKQ2"):
        return None, kind
    if kind == "INIT":
        return None, "INIT,1"
    return None, None


# --- commands down -------------------------------------------------------------------

def utf16_hex(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def command(cmd: dict) -> list[tuple[str, str]]:
    """The frames' contents for one of our commands, each with the keyword the watch
    answers with (its ack). [] for a command this protocol cannot carry."""
    t = cmd.get("type")
    if t == "locate":
        return [("CR", "CR")]
    if t == "call":
        return [(f"CALL,{cmd['number']}", "CALL")]
    if t == "message":
        return [(f"MESSAGE,{utf16_hex(cmd['text'])}", "MESSAGE")]
    return []


def config(cfg: dict) -> list[tuple[str, str]]:
    """A device config as the watch's own settings: the call centre is its SOS number
    and its centre number, the whitelist its white list, and fall detection on or off."""
    out: list[tuple[str, str]] = []
    centre = cfg.get("callcenter_number")
    if centre:
        out.append((f"SOS,{centre},,", "SOS"))
        out.append((f"CENTER,{centre}", "CENTER"))
    wl = list(cfg.get("whitelist") or [])[:10]
    if wl:
        first = (wl[:5] + [""] * 5)[:5]
        out.append(("WHITELIST1," + ",".join(first), "WHITELIST1"))
        if len(wl) > 5:
            out.append(("WHITELIST2," + ",".join((wl[5:] + [""] * 5)[:5]), "WHITELIST2"))
    if "fall_detection" in cfg:
        out.append((f"FALLDOWN,{1 if cfg['fall_detection'] else 0}", "FALLDOWN"))
    return out
