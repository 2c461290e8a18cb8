"""The wire contract v1 (shared/design/PROTOCOL.md), the one CPython definition.

The cloud validates every up message with these models; hwsim's fleet twins
build their messages with them. Unknown fields are ignored (``extra="ignore"``)
as the contract demands, so a newer watch never breaks an older cloud.
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

ROOT = "pers/v1"
MAX_PAYLOAD_BYTES = 4096
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

UP_KINDS = ("alert", "loc", "status", "ack", "presence")
DOWN_KINDS = ("cmd", "config")


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Location(_Msg):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    acc: float | None = Field(default=None, ge=0)
    src: Literal["gnss", "cell", "last"]
    ts: int | None = None
    sats: int | None = Field(default=None, ge=0)


class Cell(_Msg):
    mcc: int = Field(ge=0, le=999)
    mnc: int = Field(ge=0, le=999)
    lac: int | None = Field(default=None, ge=0)
    cid: int | None = Field(default=None, ge=0)
    rssi: int | None = None
    rat: str | None = Field(default=None, max_length=16)


class Battery(_Msg):
    pct: int | None = Field(default=None, ge=0, le=100)
    mv: int | None = Field(default=None, ge=0)


class Vitals(_Msg):
    hr: int | None = Field(default=None, ge=0, le=300)


class Net(_Msg):
    profile: str | None = Field(default=None, max_length=64)
    op: str | None = Field(default=None, max_length=16)
    rssi: int | None = None
    rat: str | None = Field(default=None, max_length=16)


Mid = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Ts = Annotated[int | None, Field(ge=0, le=2**40)]


class UpMessage(_Msg):
    v: Literal[1]
    mid: Mid
    ts: Ts = None


class Alert(UpMessage):
    kind: Literal["sos", "fall", "low_battery", "cancel"]
    trigger: Literal["button", "fall_detector", "battery", "user"] | None = None
    ref: Mid | None = None
    loc: Location | None = None
    cell: Cell | None = None
    batt: Battery | None = None
    vitals: Vitals | None = None
    net: Net | None = None
    fw: str | None = Field(default=None, max_length=32)


class LocationReport(UpMessage):
    loc: Location | None = None
    cell: Cell | None = None
    batt: Battery | None = None
    reason: Literal["alarm", "periodic", "request", "fix"] | None = None
    ref: Mid | None = None


class Status(UpMessage):
    batt: Battery | None = None
    net: Net | None = None
    fw: str | None = Field(default=None, max_length=32)
    uptime: int | None = Field(default=None, ge=0)
    cfg: int | None = Field(default=None, ge=0)
    outbox: int | None = Field(default=None, ge=0)


class CommandAck(UpMessage):
    cid: str = Field(min_length=1, max_length=64)
    ok: bool
    err: str | None = Field(default=None, max_length=256)


class Presence(_Msg):
    online: bool
    ts: Ts = None


UP_MODELS: dict[str, type[_Msg]] = {
    "alert": Alert,
    "loc": LocationReport,
    "status": Status,
    "ack": CommandAck,
    "presence": Presence,
}


# --- down: commands and config -------------------------------------------------

class _Command(_Msg):
    v: Literal[1] = 1
    cid: str = Field(min_length=1, max_length=64)
    ts: Ts = None


class AlertAckCmd(_Command):
    type: Literal["alert_ack"] = "alert_ack"
    ref: Mid
    stage: Literal["received", "operator", "closed"]
    text: str | None = Field(default=None, max_length=160)


class CallCmd(_Command):
    type: Literal["call"] = "call"
    number: str = Field(pattern=r"^\+?[0-9]{2,20}$")


class LocateCmd(_Command):
    type: Literal["locate"] = "locate"


class TrackCmd(_Command):
    type: Literal["track"] = "track"
    interval_s: int = Field(ge=5, le=86400)
    duration_s: int = Field(ge=0, le=7 * 86400)


class MessageCmd(_Command):
    type: Literal["message"] = "message"
    text: str = Field(min_length=1, max_length=160)
    ack_required: bool = False


class RingCmd(_Command):
    type: Literal["ring"] = "ring"
    seconds: int = Field(ge=1, le=120)


class VsimProfile(_Msg):
    name: str = Field(max_length=64)
    mccmnc: list[str] = Field(default_factory=list)
    apn: str | None = None
    priority: int = 0
    cost: float = 0


class VsimCmd(_Command):
    type: Literal["vsim"] = "vsim"
    profiles: list[VsimProfile]


Command = Annotated[
    Union[AlertAckCmd, CallCmd, LocateCmd, TrackCmd, MessageCmd, RingCmd, VsimCmd],
    Field(discriminator="type"),
]
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


class Reminder(_Msg):
    at: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    text: str = Field(max_length=160)


class DeviceConfig(_Msg):
    v: Literal[1] = 1
    version: int = Field(ge=0)
    heartbeat_s: int = Field(default=3600, ge=30)
    sos_hold_ms: int = Field(default=1000, ge=0, le=10000)
    cancel_window_s: int = Field(default=10, ge=0, le=300)
    fall_detection: bool = True
    callcenter_number: str | None = None
    whitelist: list[str] = Field(default_factory=list)
    kids_mode: bool = False
    reminders: list[Reminder] = Field(default_factory=list)


# --- topics and parsing ---------------------------------------------------------

class Rejected(ValueError):
    """An up message the cloud refuses. ``reason`` is a short metric label."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def up_topic(device_id: str, kind: str) -> str:
    return f"{ROOT}/{device_id}/{kind}"


def down_topic(device_id: str, kind: str) -> str:
    return f"{ROOT}/{device_id}/{kind}"


def split_topic(topic: str) -> tuple[str, str]:
    """Return (device_id, kind) of an up topic, or raise Rejected."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != ROOT:
        raise Rejected("bad_topic", topic[:200])
    device_id, kind = parts[2], parts[3]
    if not DEVICE_ID_RE.match(device_id):
        raise Rejected("bad_device_id", device_id[:80])
    if kind not in UP_KINDS:
        raise Rejected("bad_topic", topic[:200])
    return device_id, kind


def parse_up(topic: str, payload: bytes) -> tuple[str, str, _Msg]:
    """Validate one up message. Returns (device_id, kind, model) or raises Rejected."""
    device_id, kind = split_topic(topic)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected("too_large", f"{len(payload)} bytes")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("not_utf8", str(exc)) from None
    model = UP_MODELS[kind]
    try:
        # One pass in pydantic-core's JSON parser; only a failure (rare: bad input) takes
        # the slow path below, which names the reason exactly as it always has.
        return device_id, kind, model.model_validate_json(text)
    except ValidationError:
        pass
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Rejected("not_json", str(exc)[:200]) from None
    if not isinstance(data, dict):
        raise Rejected("not_object", type(data).__name__)
    try:
        return device_id, kind, model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise Rejected("invalid", f"{where}: {first.get('msg')}"[:200]) from None


def dumps(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()
