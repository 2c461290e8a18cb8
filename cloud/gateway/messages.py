"""What a watch frame says, whatever its protocol, and the up message it becomes.

A decoded frame is a ``Report``: a position (GNSS, or only the cells and Wi-Fi
it heard), a battery level, and for an alarm its kind. ``up_message`` turns it
into the topic and JSON payload of the MQTT contract (docs/protocol.md), so the
ingest cannot tell a gateway watch from one of ours.

A position without a GNSS fix is sent as the serving cell only: the ingest looks
it up in the cell database (cloud/domain/cells.py) and shows it as approximate,
with the cell's range as its accuracy. Wi-Fi access points are kept in the
report (``wifi``) but give no position: there is no Wi-Fi database offline."""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cloud import protocol


@dataclass
class CellInfo:
    mcc: int
    mnc: int
    lac: int
    cid: int


@dataclass
class Report:
    """One decoded frame. ``alarm``: "sos", "fall" or "low_battery" for an alarm,
    None for a location or a heartbeat. ``ts``: the watch's own time (UTC), if any."""
    kind: str  # "alarm" | "location" | "heartbeat"
    alarm: str | None = None
    ts: int | None = None
    valid: bool = False  # a GNSS fix
    lat: float | None = None
    lon: float | None = None
    sats: int | None = None
    batt: int | None = None
    cells: list[CellInfo] = field(default_factory=list)
    wifi: list[tuple[str, int]] = field(default_factory=list)  # (mac, rssi)
    hr: int | None = None
    note: str | None = None  # why an alarm frame is not an alarm (charger unplugged, ...)


def unix(year: int, month: int, day: int, hh: int, mm: int, ss: int) -> int | None:
    """The watch's time as unix seconds, or None when it is no time (a watch that
    never had the network's clock sends 000000) or outside the contract's range."""
    try:
        ts = int(datetime(year, month, day, hh, mm, ss, tzinfo=UTC).timestamp())
    except ValueError:
        return None
    return ts if protocol.TS_MIN <= ts <= protocol.TS_MAX else None


def battery(value: str) -> int | None:
    try:
        pct = int(value)
    except ValueError:
        return None
    return pct if 0 <= pct <= 100 else None


def frame_mid(imei: str, content: str) -> str:
    """A mid from the frame itself: a watch that re-sends an alarm it got no reply
    for re-sends the same bytes, which the ingest then merges as a retransmission."""
    return "g-" + hashlib.sha256(f"{imei}|{content}".encode()).hexdigest()[:24]


def _position(rep: Report) -> dict | None:
    if not rep.valid or rep.lat is None or rep.lon is None:
        return None
    if not (-90 <= rep.lat <= 90 and -180 <= rep.lon <= 180) or (rep.lat == 0 and rep.lon == 0):
        return None
    loc: dict = {"lat": rep.lat, "lon": rep.lon, "src": "gnss"}
    if rep.ts is not None:
        loc["ts"] = rep.ts
    if rep.sats is not None and 0 <= rep.sats <= 255:
        loc["sats"] = rep.sats
    return loc


def _cell(rep: Report) -> dict | None:
    for c in rep.cells:  # the first is the serving cell
        if 0 <= c.mcc <= 999 and 0 <= c.mnc <= 999 and 0 <= c.lac < 2**24 and 0 <= c.cid < 2**36 and c.mcc:
            return {"mcc": c.mcc, "mnc": c.mnc, "lac": c.lac, "cid": c.cid}
    return None


TRIGGER = {"sos": "button", "fall": "fall_detector", "low_battery": "battery"}


def up_message(imei: str, rep: Report, mid: str) -> tuple[str, bytes]:
    """The (topic, payload) of the MQTT contract this report is."""
    body: dict = {"v": 1, "mid": mid}
    if rep.ts is not None:
        body["ts"] = rep.ts
    loc, cell = _position(rep), _cell(rep)
    if rep.batt is not None:
        body["batt"] = {"pct": rep.batt}
    if rep.kind == "alarm" and rep.alarm:
        body.update(kind=rep.alarm, trigger=TRIGGER[rep.alarm])
        kind = "alert"
    elif rep.kind == "heartbeat":
        kind = "status"
        if rep.hr is not None and 0 <= rep.hr <= 300:
            body["vitals"] = {"hr": rep.hr}
    else:
        kind = "loc"
        body["reason"] = "periodic"
        if rep.hr is not None and 0 <= rep.hr <= 300:
            body["vitals"] = {"hr": rep.hr}
    if kind != "status":
        if loc is not None:
            body["loc"] = loc
        if cell is not None:
            body["cell"] = cell
    return protocol.up_topic(imei, kind), json.dumps(body, separators=(",", ":")).encode()


def presence(imei: str, online: bool, ts: int) -> tuple[str, bytes]:
    return protocol.up_topic(imei, "presence"), json.dumps({"online": online, "ts": ts}).encode()


def command_ack(imei: str, cid: str, ts: int) -> tuple[str, bytes]:
    body = {"v": 1, "mid": "g-ack-" + secrets.token_hex(8), "ts": ts, "cid": cid, "ok": True}
    return protocol.up_topic(imei, "ack"), json.dumps(body, separators=(",", ":")).encode()


def new_mid() -> str:
    return "g-" + secrets.token_hex(12)
