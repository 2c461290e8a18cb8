"""Cases: what the console shows of an alarm, and the operators' actions on it."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from cloud.domain.cases import DISPATCH_SERVICES, OUTCOMES


class ResolveIn(BaseModel):
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    note: str | None = Field(default=None, max_length=2000)


class CallIn(BaseModel):
    number: str | None = Field(default=None, pattern=r"^\+?[0-9]{2,20}$",
                               description="defaults to the case's call-centre number")


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=160)
    ack_required: bool = False


class DispatchIn(BaseModel):
    service: Literal[DISPATCH_SERVICES]  # type: ignore[valid-type]
    reference: str | None = Field(default=None, max_length=100)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class Location(BaseModel):
    lat: float
    lon: float
    acc: float | None = None
    src: str | None = None
    ts: int | None = None


class ContactOut(BaseModel):
    id: int
    rank: int
    name: str
    relation: str | None = None
    phone: str
    phone_display: str | None = None  # in its country's national format


class TrailPoint(BaseModel):
    lat: float
    lon: float
    acc: float | None = None
    src: str
    at: str
    ref: str | None = None  # the command (a locate) this position answers


class CommandOut(BaseModel):
    cid: str
    type: str
    status: str
    created_at: str
    acked_at: str | None = None
    stage: str | None = None


class WearerOut(BaseModel):
    id: int
    name: str
    age: int | None = None
    language: str | None = None
    home_address: str | None = None
    home_lat: float | None = None
    home_lon: float | None = None
    medical_notes: str | None = None
    photo_url: str | None = None
    contacts: list[ContactOut] | None = None


class TimelineEntry(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    detail: dict | None = None


class CentreBrief(BaseModel):
    id: int
    name: str
    phone: str | None = None


class LocationLabel(BaseModel):
    lat: float
    lon: float
    address: str | None = None
    from_home_m: int | None = None
    from_home: str | None = None  # in words, never finer than the fix's accuracy
    accuracy: str | None = None   # "about 800 m"
    text: str


class Reading(BaseModel):
    pct: int
    at: str


class Zone(BaseModel):
    """The safe zone a geofence case is about, the crossing that opened it, and the return."""
    geofence_id: int
    name: str
    event: str  # exit | enter
    at: str
    lat: float
    lon: float
    back_inside_at: str | None = None


class CaseOut(BaseModel):
    id: int
    tenant_id: int
    device_id: str
    kind: str
    priority: int
    status: str
    press_count: int
    wearer_cancelled: bool
    late: bool
    opened_at: str
    claimed_at: str | None = None
    claimed_by: int | None = None
    resolved_at: str | None = None
    outcome: str | None = None
    location: Location | None = None
    batt_pct: int | None = None
    heart_rate: int | None = None
    heart_rate_at: str | None = None
    battery: Reading | None = None  # the watch's latest battery figure and when it was received
    net_profile: str | None = None
    wearer: WearerOut | None = None
    timeline: list[TimelineEntry] | None = None
    trail: list[TrailPoint] | None = None
    commands: list[CommandOut] | None = None
    time_to_claim_s: float | None = None
    centre_id: int | None = None
    centre: CentreBrief | None = None
    routed_at: str | None = None
    in_call_at: str | None = None
    escalation_level: int = 0
    location_label: LocationLabel | None = None
    zone: Zone | None = None  # geofence cases only
    reason: str | None = None  # welfare and technical alarms: "Watch not worn since 10:40"
    # What the watch got wrong in its alarms (dropped fields, a wrong clock), and in words.
    flags: list[dict] = []
    warnings: list[str] = []
