"""Administration bodies: the tenant, its centres and contract, wearers and
contacts, devices and their configs, operators, geofences."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from cloud.api.schemas.common import PHONE, SafeLink, Window
from cloud.domain.phones import check_characters, to_e164
from cloud.domain.zone_shape import polygon_problem, radius_problem


def _international_phone(v: str | None) -> str | None:
    """A number written with its country code is checked here, next to its field; one
    without is read by the domain in the tenant's default region (PERS_PHONE_REGION)."""
    if v is None:
        return v
    v = v.strip()
    if v.startswith(("+", "00")):
        return to_e164(v)
    check_characters(v)  # a national number's country is the domain's to know
    return v


class Area(BaseModel):
    type: Literal["circle", "polygon"]
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    points: list[list[float]] | None = None


class TenantPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    webhook_url: str | None = Field(default=None, max_length=400, pattern=r"^https?://")
    missed_dose_to: Literal["family", "centre"] | None = Field(
        default=None, description="who hears of a missed medication dose: the first contact, or the centre")


class CentreIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, min_length=2, max_length=40,
                              description="with its country code (+33 4 00 00 00 00), stored in E.164")
    countries: list[str] = Field(default_factory=list, description="ISO 3166 alpha-2 codes covered")
    areas: list[Area] = Field(default_factory=list, description="circles and polygons covered")
    languages: list[str] = Field(default_factory=list, description="ISO 639-1 codes; empty = any")
    hours: list[Window] = Field(default_factory=list, description="opening windows; empty = 24/7")
    timezone: str | None = Field(default="UTC", max_length=64)
    contract: bool = Field(default=True, description="append the centre to the tenant's contract")

    _phone = field_validator("phone")(_international_phone)

    @field_validator("countries")
    @classmethod
    def _cc(cls, v):
        if not all(len(x) == 2 and x.isalpha() for x in v):
            raise ValueError("countries are ISO 3166 alpha-2 codes")
        return v

    def dump(self, partial: bool = False) -> dict:
        d = self.model_dump(exclude_unset=partial, exclude={"hours", "areas"})
        if not partial or "hours" in self.model_fields_set:
            d["hours"] = [w.dump() for w in self.hours]
        if not partial or "areas" in self.model_fields_set:
            d["areas"] = [a.model_dump(exclude_none=True) for a in self.areas]
        return d


class CentrePatch(CentreIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]


class ContractIn(BaseModel):
    centre_ids: list[int] = Field(min_length=1, description="the tenant's centres, most preferred first")


class ContactIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    relation: str | None = Field(default=None, max_length=64)
    phone: str = Field(min_length=2, max_length=40, description="with its country code, stored in E.164")
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    channels: list[Literal["email", "sms", "webhook"]] | None = None

    _phone = field_validator("phone")(_international_phone)


class WearerIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    birth_date: date | None = None
    language: str | None = Field(default=None, max_length=8)
    home_address: str | None = Field(default=None, max_length=400)
    home_lat: float | None = Field(default=None, ge=-90, le=90)
    home_lon: float | None = Field(default=None, ge=-180, le=180)
    medical_notes: str | None = Field(default=None, max_length=4000)
    photo_url: SafeLink | None = Field(default=None, max_length=400)
    timezone: str | None = Field(default=None, max_length=64)
    contacts: list[ContactIn] | None = Field(default=None, description="in cascade order (first is called first)")

    @field_validator("birth_date")
    @classmethod
    def _born(cls, v: date | None) -> date | None:
        if v is not None and v > date.today():
            raise ValueError("the birth date is in the future")
        return v

    def dump(self, partial: bool = False) -> dict:
        d = self.model_dump(exclude_unset=partial, exclude={"contacts"})
        if self.contacts is not None:
            d["contacts"] = [c.model_dump() for c in self.contacts]
        return d


class WearerPatch(WearerIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]


class DeviceIn(BaseModel):
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                           description="refused: the server issues device ids (docs/security.md)")
    wearer_id: int | None = None


class DeviceAssign(BaseModel):
    wearer_id: int | None


class Secret(BaseModel):
    id: str
    secret: str = Field(description="shown once: only its hash is kept")


class ConfigIn(BaseModel):
    heartbeat_s: int | None = Field(default=None, ge=30, le=86400)
    sos_hold_ms: int | None = Field(default=None, ge=0, le=10000)
    cancel_window_s: int | None = Field(default=None, ge=0, le=300)
    fall_detection: bool | None = None
    callcenter_number: str | None = Field(default=None, pattern=PHONE)
    kids_mode: bool | None = None
    reminders: list[dict] | None = None


class ReminderIn(BaseModel):
    id: str | None = Field(default=None, min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$",
                           description="kept across edits so that adherence follows the same reminder")
    at: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="local time, HH:MM")
    days: list[Annotated[int, Field(ge=0, le=6)]] | None = Field(default=None, min_length=1, max_length=7,
                                   description="0 Monday .. 6 Sunday; absent: every day")
    text: str = Field(min_length=1, max_length=60, pattern=r"^[^\x00-\x1f]+$", description="what the watch shows")
    confirm: bool = Field(default=True, description="the wearer presses to confirm; unconfirmed: a missed dose")
    window_min: int = Field(default=30, ge=1, le=720, description="minutes to confirm")


class ReminderSchedule(BaseModel):
    reminders: list[ReminderIn] = Field(max_length=10)


class OperatorIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str = Field(min_length=8, max_length=256)
    display_name: str | None = Field(default=None, max_length=200)
    role: Literal["operator", "supervisor", "admin"] = "operator"
    centre_id: int | None = None


class OperatorPatch(BaseModel):
    display_name: str | None = Field(default=None, max_length=200)
    role: Literal["operator", "supervisor", "admin"] | None = None
    centre_id: int | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=256)


class GeofenceIn(BaseModel):
    """A zone: a circle (lat, lon, radius_m) or a simple polygon (points [[lat, lon], ...]).
    Each problem is reported on its own field, so the admin page shows it there."""
    name: str = Field(min_length=1, max_length=100)
    shape: Literal["circle", "polygon"]
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    radius_m: float | None = Field(default=None, validate_default=True)
    points: list[list[float]] | None = Field(default=None, validate_default=True)
    schedule: list[Window] | None = Field(default=None, description="when an alert applies; none = always")
    alert_on_exit: bool = False
    alert_on_enter: bool = False

    @field_validator("radius_m")
    @classmethod
    def _radius(cls, v: float | None, info: ValidationInfo) -> float | None:
        if info.data.get("shape") != "circle":
            return v
        if v is None:
            raise ValueError("a circle needs a radius")
        problem = radius_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("points")
    @classmethod
    def _points(cls, v: list[list[float]] | None, info: ValidationInfo) -> list[list[float]] | None:
        if info.data.get("shape") != "polygon":
            return v
        if not v or any(len(p) != 2 or not (-90 <= p[0] <= 90 and -180 <= p[1] <= 180) for p in v):
            raise ValueError("a polygon is a list of at least 3 points [lat, lon]")
        problem = polygon_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: list[Window] | None) -> list[Window] | None:
        if v is not None and (not v or any(not w.days for w in v)):
            raise ValueError("a schedule needs at least one window with at least one day (no schedule: always)")
        return v

    def dump(self) -> dict:
        d = self.model_dump(exclude={"schedule"})
        d["schedule"] = [w.dump() for w in self.schedule] if self.schedule else None
        return d


class ReceiverIn(BaseModel):
    """An alarm centre's SIA DC-09 receiver (docs/forwarding.md)."""
    name: str = Field(min_length=1, max_length=200)
    host: str = Field(min_length=1, max_length=255, description="checked by the outbound guard, as webhooks are")
    port: int = Field(ge=1, le=65535)
    backup_host: str | None = Field(default=None, max_length=255)
    backup_port: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    fmt: Literal["ADM-CID", "SIA-DCS"] = "ADM-CID"
    account: str = Field(pattern=r"^[0-9A-Fa-f]{3,16}$")
    receiver_no: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{1,6}$")
    line_no: str = Field(default="0", pattern=r"^[0-9A-Fa-f]{1,6}$")
    aes_key: str | None = Field(default=None, max_length=64, description="write-only; never returned")
    key_encoding: Literal["hex", "ascii"] = "hex"
    poll_s: int = Field(default=0, ge=0, le=86400, description="NULL supervision polls every poll_s; 0: none")
    enabled: bool = True


class ReceiverPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    host: str | None = Field(default=None, min_length=1, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    backup_host: str | None = Field(default=None, max_length=255)
    backup_port: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["tcp", "udp"] | None = None
    fmt: Literal["ADM-CID", "SIA-DCS"] | None = None
    account: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{3,16}$")
    receiver_no: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{1,6}$")
    line_no: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{1,6}$")
    aes_key: str | None = Field(default=None, max_length=64)
    key_encoding: Literal["hex", "ascii"] | None = None
    poll_s: int | None = Field(default=None, ge=0, le=86400)
    enabled: bool | None = None


class ReceiverZone(BaseModel):
    zone: int | None = Field(ge=1, le=999, description="the zone the receivers know this watch by")
