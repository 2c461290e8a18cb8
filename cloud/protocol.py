"""The wire contract v1 (shared/design/PROTOCOL.md), the one CPython definition.

The cloud validates every up message with these models; hwsim's fleet twins
build their messages with them. Unknown fields are ignored (``extra="ignore"``)
as the contract demands, so a newer watch never breaks an older cloud.

Every number has a range that makes sense and fits both databases, and NaN and
Infinity are refused (the console's ``JSON.parse`` cannot read them). Free text
may not hold NUL or lone surrogates (PostgreSQL refuses both). An alarm is never
refused for a bad field: ``salvage_alarm`` drops the field, records why in the
alert's ``flags``, and keeps the alarm (docs/protocol.md, "Ranges").
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

ROOT = "pers/v1"
MAX_PAYLOAD_BYTES = 4096
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

UP_KINDS = ("alert", "loc", "status", "ack", "presence")
DOWN_KINDS = ("cmd", "config")


class _Msg(BaseModel):
    # allow_inf_nan=False: NaN and Infinity are refused wherever a float is read.
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


def _storable(text: str) -> str:
    """Text both databases can hold: no NUL (PostgreSQL refuses it in text and jsonb)
    and no lone surrogate (not encodable as UTF-8; json.loads lets one through)."""
    if "\x00" in text:
        raise ValueError("text may not contain NUL")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text may not contain a lone surrogate") from None
    return text


# Text fields, each with its length bound (a type checker needs them spelled out).
_STORABLE = AfterValidator(_storable)
Text16 = Annotated[str, Field(max_length=16), _STORABLE]
Text32 = Annotated[str, Field(max_length=32), _STORABLE]
Text64 = Annotated[str, Field(max_length=64), _STORABLE]
Text256 = Annotated[str, Field(max_length=256), _STORABLE]


# Unix seconds. 2020-01-01 .. 2100-01-01: a clock before 2020 is a watch that never
# had the time (the contract says null then); the upper bound fits a 64-bit column
# and leaves room past 2038. Whether a time is credible *now* is the ingest's call.
TS_MIN = 1_577_836_800
TS_MAX = 4_102_444_800
INT32_MAX = 2**31 - 1
Ts = Annotated[int | None, Field(ge=TS_MIN, le=TS_MAX)]
Dbm = Annotated[int | None, Field(ge=-150, le=0)]  # received power; modems write 99/255 for unknown: send null


class Location(_Msg):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    acc: float | None = Field(default=None, ge=0, le=100_000)  # metres, 1-sigma; 100 km: the widest cell
    src: Literal["gnss", "cell", "last"]
    ts: Ts = None
    sats: int | None = Field(default=None, ge=0, le=255)


class Cell(_Msg):
    mcc: int = Field(ge=0, le=999)
    mnc: int = Field(ge=0, le=999)
    lac: int | None = Field(default=None, ge=0, le=2**24 - 1)  # LAC 16 bits, LTE TAC 16, NR TAC 24
    cid: int | None = Field(default=None, ge=0, le=2**36 - 1)  # NR cell identity: 36 bits
    rssi: Dbm = None
    rat: Text16 | None = None


class Battery(_Msg):
    pct: int | None = Field(default=None, ge=0, le=100)
    mv: int | None = Field(default=None, ge=0, le=10_000)


class Vitals(_Msg):
    hr: int | None = Field(default=None, ge=0, le=300)


class Net(_Msg):
    profile: Text64 | None = None
    op: Text16 | None = None
    rssi: Dbm = None
    rat: Text16 | None = None


Mid = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


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
    fw: Text32 | None = None
    # Not on the wire: what salvage_alarm dropped, [{"field": .., "problem": ..}].
    _flags: tuple[dict[str, str], ...] = PrivateAttr(default=())

    @property
    def flags(self) -> list[dict[str, str]]:
        return list(self._flags)


class LocationReport(UpMessage):
    loc: Location | None = None
    cell: Cell | None = None
    batt: Battery | None = None
    vitals: Vitals | None = None  # a reading taken after the alarm left: it updates the open case
    reason: Literal["alarm", "periodic", "request", "fix"] | None = None
    ref: Mid | None = None


# A call's duration as the modem gives it (VOICE CALL: END: HHMMSS): at most 99:59:59.
CALL_DUR_MAX = 99 * 3600 + 59 * 60 + 59


class CallState(_Msg):
    """What the watch's modem says of a voice call (firmware/app/calls.py), on a status."""
    state: Literal["dialing", "alerting", "incoming", "active", "ended"]
    dir: Literal["out", "in"] | None = None
    number: Text32 | None = None
    cid: Mid | None = None  # the ``call`` command that asked for it
    end: Literal["completed", "busy", "no_answer", "failed", "missed"] | None = None
    dur: int | None = Field(default=None, ge=0, le=CALL_DUR_MAX)  # seconds connected


class ReminderReport(_Msg):
    """What became of a medication reminder that asked for a confirmation
    (firmware/app/reminders.py), on a status: the wearer confirmed it (``at``: the
    press), or its window closed first."""
    id: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_:-]+$")]
    due: Annotated[int, Field(ge=TS_MIN, le=TS_MAX)]  # the dose's due time, UTC seconds
    state: Literal["confirmed", "missed"]
    at: Ts = None


class CheckinAnswer(_Msg):
    """The wearer answered the watch's "Are you OK?" of ``at`` (config ``checkin_at``)."""
    at: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    ok: bool


class Status(UpMessage):
    batt: Battery | None = None
    vitals: Vitals | None = None
    net: Net | None = None
    fw: Text32 | None = None
    uptime: int | None = Field(default=None, ge=0, le=INT32_MAX)
    cfg: int | None = Field(default=None, ge=0, le=INT32_MAX)
    outbox: int | None = Field(default=None, ge=0, le=100_000)
    call: CallState | None = None  # a call's state changed (docs/protocol.md)
    reminder: ReminderReport | None = None  # a dose confirmed or missed (docs/protocol.md)
    # Welfare (docs/protocol.md, "Welfare in the status"): seconds since the watch last
    # felt the wearer move, whether its PPG saw skin at its last look and since when.
    still_s: int | None = Field(default=None, ge=0, le=INT32_MAX)
    worn: bool | None = None
    worn_s: int | None = Field(default=None, ge=0, le=INT32_MAX)
    checkin: CheckinAnswer | None = None


class CommandAck(UpMessage):
    cid: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    ok: bool
    err: Text256 | None = None


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
    priority: int = Field(default=0, ge=-INT32_MAX, le=INT32_MAX)
    cost: float = Field(default=0, ge=0, le=1e6)
    iccid: str | None = Field(default=None, pattern=r"^[0-9]{18,20}F?$")  # a profile of the cloud's stock


class VsimCmd(_Command):
    type: Literal["vsim"] = "vsim"
    profiles: list[VsimProfile]


Command = Annotated[
    AlertAckCmd | CallCmd | LocateCmd | TrackCmd | MessageCmd | RingCmd | VsimCmd,
    Field(discriminator="type"),
]
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


class Reminder(_Msg):
    """A reminder in the wearer's local time. ``{"at","text"}`` alone (the first form)
    fires every day and asks for nothing; ``id``, ``days``, ``confirm`` and
    ``window_min`` were added for medication (docs/protocol.md)."""
    at: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    text: Annotated[str, Field(max_length=160), _STORABLE]  # stored with each dose too
    id: str | None = Field(default=None, min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_:-]+$")
    days: list[Annotated[int, Field(ge=0, le=6)]] | None = Field(default=None, min_length=1, max_length=7)
    confirm: bool | None = None  # the wearer must press to confirm; unconfirmed: a missed dose
    window_min: int | None = Field(default=None, ge=1, le=720)  # minutes to confirm (30 when absent)


class DeviceConfig(_Msg):
    v: Literal[1] = 1
    version: int = Field(ge=0, le=INT32_MAX)
    heartbeat_s: int = Field(default=3600, ge=30, le=7 * 86400)
    sos_hold_ms: int = Field(default=1000, ge=0, le=10000)
    cancel_window_s: int = Field(default=10, ge=0, le=300)
    fall_detection: bool = True
    callcenter_number: str | None = None
    whitelist: list[str] = Field(default_factory=list)
    kids_mode: bool = False
    reminders: list[Reminder] = Field(default_factory=list)
    # The daily "Are you OK?" (local time) and how long the watch asks it.
    checkin_at: str | None = Field(default=None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    checkin_window_s: int | None = Field(default=None, ge=60, le=86400)


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


ALARM_UNREADABLE = frozenset({"too_large", "not_utf8", "not_json", "not_object"})
NON_ALARM_ALERT_KINDS = frozenset({"low_battery", "cancel"})
_SUBMODELS: dict[str, type[_Msg]] = {"loc": Location, "cell": Cell, "batt": Battery, "vitals": Vitals, "net": Net}


def synthetic_mid(payload: bytes) -> str:
    """A mid for an alarm that came without a usable one: the same bytes (a
    retransmission) give the same mid, so it is still merged."""
    return "x-" + hashlib.sha256(payload).hexdigest()[:24]


def parse_up(topic: str, payload: bytes) -> tuple[str, str, _Msg]:
    """Validate one up message. Returns (device_id, kind, model) or raises Rejected.

    On the alert topic, a JSON object that is not a valid non-alarm alert
    (``low_battery``, ``cancel``) is an alarm, and is never refused for a bad
    field: see ``salvage_alarm``."""
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
        if kind == "alert":
            alarm = salvage_alarm(data, payload)
            if alarm is not None:
                return device_id, kind, alarm
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise Rejected("invalid", f"{where}: {first.get('msg')}"[:200]) from None


def salvage_alarm(data: dict[str, Any], payload: bytes) -> Alert | None:
    """An alarm (an alert whose kind is not ``low_battery`` or ``cancel``) with bad
    fields, made valid by dropping each bad field, with ``flags`` saying what was
    dropped and why. An unusable ``v`` becomes 1, a missing or unusable ``mid`` a
    ``synthetic_mid``, an unknown or missing ``kind`` "sos" (an alarm nobody can read
    is still an alarm). A bad sub-field is dropped alone where the rest stands
    (``loc.ts``), else its whole object goes (``loc`` without a usable ``lat``).
    None for a non-alarm alert: that is refused like any other message."""
    kind = data.get("kind")
    if isinstance(kind, str) and kind in NON_ALARM_ALERT_KINDS:  # a list here must not raise
        return None
    data = dict(data)
    flags: list[dict[str, str]] = []
    for _ in range(32):  # each pass fixes at least one field; an alert has a dozen
        try:
            alert = Alert.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                _drop(data, err, payload, flags)
            continue
        alert._flags = tuple(flags)
        return alert
    return None


def _drop(data: dict[str, Any], err: ErrorDetails, payload: bytes, flags: list[dict[str, str]]) -> None:
    path = err.get("loc", ())
    if not path:
        return
    field, problem = str(path[0]), str(err.get("msg", ""))[:120]
    if field == "v":
        data["v"] = 1
    elif field == "mid":
        data["mid"] = synthetic_mid(payload)
    elif field == "kind":
        data["kind"] = "sos"
    elif (len(path) >= 2 and field in _SUBMODELS and isinstance(data.get(field), dict)
          and isinstance(path[1], str) and path[1] in _SUBMODELS[field].model_fields
          and not _SUBMODELS[field].model_fields[path[1]].is_required()):
        data[field] = {k: v for k, v in data[field].items() if k != path[1]}
        field = f"{field}.{path[1]}"
    elif field in data:
        del data[field]
    else:
        return
    if not any(f["field"] == field for f in flags):
        flag = {"field": field, "problem": problem}
        got = err.get("input")
        if isinstance(got, (str, int, float, bool)) and problem != "Field required":
            flag["got"] = str(got)[:40]
        flags.append(flag)


def dumps(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()
