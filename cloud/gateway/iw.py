"""The IW ("BP") watch protocol: ``IWAPxx<fields>#`` up, ``IWBPxx,<fields>#`` down.

The session starts with a login, ``IWAP00<IMEI>#``, answered ``IWBP00,<UTC
yyyyMMddHHmmss>,<time zone>#``; every other frame is answered with its own type
turned from AP to BP (Traccar's TrvProtocolDecoder): ``IWAP03`` heartbeat ->
``IWBP03#``, ``IWAP01`` location -> ``IWBP01#``, ``IWAP10`` alarm -> ``IWBP10#``
(sent only once the alarm is committed), ``IWAPFD`` fall -> ``IWBPFD#``.

A position: ``yymmdd A|V ddmm.mmmm N|S dddmm.mmmm E|W speed(ddd.d) hhmmss
course(6) gsm(3) sats(3) battery(3) acc(1) arm(2) mode(2)``, then
``,mcc,mnc,lac,cid``; an ``AP10`` goes on with ``,<alarm>,<language>,<reply
flag>,<Wi-Fi>``. Alarm ``01`` is SOS, ``02`` low battery; an AP10 with any other
code is still an alarm (SOS): the frame is the watch saying "alarm".

Commands down carry the IMEI and a six-digit serial the watch echoes in its
answer (``IWAP16,<serial>``), which acks the command: ``BP16`` locate, ``BP12``
SOS numbers, ``BP14`` whitelist (``name-in-UTF-16BE-hex|number``), ``BP40`` the
shortcut command ``>*fall@1*<`` (fall detection on/off, GB2312 hex), and ``BPSM``
the SMS-command tunnel, through which ``#listen#<number>`` (written
``@listen@<number>``) makes the watch telephone that number: the call back."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cloud.gateway.messages import CellInfo, Report, battery, unix
from cloud.gateway.setracker import FrameError

_START = re.compile(rb"(IW|TRV)[A-Z][A-Z0-9][A-Z0-9]{2}")
_POSITION = re.compile(
    r"(\d\d)(\d\d)(\d\d)([AV])(\d\d)(\d\d\.\d+)([NS])(\d{3})(\d\d\.\d+)([EW])(\d{3}\.\d)"
    r"(\d\d)(\d\d)(\d\d)([\d.]{6})(\d{3})(\d{3})(\d{3})(\d)(\d\d)(\d\d)(?:\d{3,5})?"
    r",(\d+),(\d+),(\d+),(\d+)(.*)$")


@dataclass
class Frame:
    prefix: str  # "IW" (or "TRV", the same protocol's older name)
    type: str    # "AP00", "AP01", ...
    body: str    # what follows the type, without the closing '#'

    @property
    def content(self) -> str:
        return self.type + self.body


def split(buf: bytearray, max_frame: int) -> list[Frame]:
    frames: list[Frame] = []
    while buf:
        if bytes(buf[0:1]) in (b"\r", b"\n", b" "):
            del buf[0]
            continue
        head = bytes(buf[:7])
        if not (b"IW".startswith(head[:2]) or b"TRV".startswith(head[:3])):
            raise FrameError("garbage")
        end = buf.find(b"#")
        if end < 0:
            if len(buf) > max_frame:
                raise FrameError("oversize")
            if len(head) >= 7 and not _START.match(head):
                raise FrameError("bad_header")
            break
        if end + 1 > max_frame:
            raise FrameError("oversize")
        raw = bytes(buf[:end]).decode("utf-8", "replace")
        del buf[:end + 1]
        m = _START.match(raw.encode())
        if m is None:
            raise FrameError("bad_header")
        prefix = m.group(1).decode()
        frames.append(Frame(prefix, raw[len(prefix):len(prefix) + 4], raw[len(prefix) + 4:]))
    return frames


def login_reply(now: datetime | None = None) -> bytes:
    now = now or datetime.now(UTC)
    return f"IWBP00,{now.strftime('%Y%m%d%H%M%S')},0#".encode()


def reply(frame: Frame) -> bytes:
    """The answer to any frame but the login: its type, AP turned to BP."""
    return f"{frame.prefix}B{frame.type[1:]}#".encode()


def login_imei(frame: Frame) -> str | None:
    imei = frame.body.lstrip(",").split(",")[0]
    return imei if re.fullmatch(r"[0-9]{8,20}", imei) else None


def decode_position(body: str, kind: str) -> Report:
    rep = Report(kind=kind)
    m = _POSITION.match(body)
    if m is None:
        if kind == "alarm":
            rep.alarm = "sos"  # an alarm whose position cannot be read is an alarm
        return rep
    g = m.groups()
    rep.ts = unix(2000 + int(g[0]), int(g[1]), int(g[2]), int(g[11]), int(g[12]), int(g[13]))
    rep.valid = g[3] == "A"
    lat = int(g[4]) + float(g[5]) / 60
    lon = int(g[7]) + float(g[8]) / 60
    rep.lat = -lat if g[6] == "S" else lat
    rep.lon = -lon if g[9] == "W" else lon
    rep.sats = int(g[16])
    rep.batt = battery(g[17])
    rep.cells.append(CellInfo(int(g[21]), int(g[22]), int(g[23]), int(g[24])))
    rest = g[25].split(",")[1:]
    if kind == "alarm":
        code = rest[0] if rest else ""
        rep.alarm = "low_battery" if code == "02" else "sos"
        rest = rest[3:]
    for ap in ",".join(rest).split("&"):
        parts = ap.split("|")
        if len(parts) == 3:
            try:
                rep.wifi.append((parts[1].strip(), int(parts[2])))
            except ValueError:
                pass
    return rep


def decode_lbs(body: str) -> Report:
    """AP02: the cells (mcc, mnc, then lac|cid|rssi each) and Wi-Fi, no GNSS."""
    rep = Report(kind="location")
    f = body.lstrip(",").split(",")
    try:
        n, mcc, mnc = int(f[2]), int(f[3]), int(f[4])
        for part in f[5:5 + n]:
            lac, cid, _ = part.split("|")
            rep.cells.append(CellInfo(mcc, mnc, int(lac), int(cid)))
    except (IndexError, ValueError):
        pass
    return rep


def decode(frame: Frame) -> Report | None:
    t, body = frame.type, frame.body
    if t == "AP01":
        return decode_position(body, "location")
    if t == "AP10":
        return decode_position(body, "alarm")
    if t == "APFD":
        rep = decode_position(body.lstrip(","), "alarm")
        rep.alarm = "fall"
        return rep
    if t == "AP02":
        return decode_lbs(body)
    if t == "AP03":
        rep = Report(kind="heartbeat")
        f = body.lstrip(",").split(",")
        if f and len(f[0]) >= 9:
            rep.batt = battery(f[0][6:9])
        return rep
    if t == "AP49":
        try:
            return Report(kind="heartbeat", hr=int(body.lstrip(",").split(",")[0]))
        except ValueError:
            return None
    return None


def serial_of(frame: Frame) -> str | None:
    """The serial a watch's answer to a command echoes (``IWAP16,080835``)."""
    f = frame.body.lstrip(",").split(",")
    return f[0] if f and re.fullmatch(r"\d{6}", f[0]) else None


# --- commands down -------------------------------------------------------------------

def _hex16(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def command(cmd: dict, imei: str, serial: str) -> list[bytes]:
    t = cmd.get("type")
    if t == "locate":
        return [f"IWBP16,{imei},{serial}#".encode()]
    if t == "call":
        return [f"IWBPSM,{imei},{serial},@listen@{cmd['number']}#".encode()]
    return []


def config(cfg: dict, imei: str, serials) -> list[bytes]:
    """``serials``: a function giving a fresh serial per frame."""
    out: list[bytes] = []
    centre = cfg.get("callcenter_number")
    if centre:
        out.append(f"IWBP12,{imei},{serials()},{centre},,#".encode())
    wl = list(cfg.get("whitelist") or [])[:10]
    if wl:
        out.append(f"IWBP14,{imei},{serials()},{','.join('|' + n for n in wl)}#".encode())
    if "fall_detection" in cfg:
        shortcut = f">*fall@{1 if cfg['fall_detection'] else 0}*<".encode("ascii").hex().upper()
        out.append(f"IWBP40,{imei},{serials()},{shortcut}#".encode())
    return out
