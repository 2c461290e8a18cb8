"""Administration and supervision API: everything under /api/admin/ needs the
admin role, /api/supervisor/ needs supervisor or admin (the convention the
tenant-isolation matrix in tests/cloud/api/test_tenant_isolation.py checks). Scoped to the caller's tenant;
another tenant's objects answer 404. Writes need the CSRF header, like every
state-changing call of the console."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field, field_validator

from cloud.api.deps import csrf_checked_operator, current_operator, services
from cloud.domain.admin import AdminError
from cloud.domain.escalation import sla_report
from cloud.store.models import Operator

class ErrorOut(BaseModel):
    detail: str


# Every route may answer these; documented so that clients (and schemathesis) know them.
router = APIRouter(responses={
    400: {"model": ErrorOut, "description": "the body is not readable JSON"},
    401: {"model": ErrorOut, "description": "not logged in"},
    403: {"model": ErrorOut, "description": "missing CSRF token, or the role does not allow it"},
    404: {"model": ErrorOut, "description": "no such object in your tenant"},
    409: {"model": ErrorOut, "description": "conflicts with the current state"},
    503: {"model": ErrorOut, "description": "a needed service (the broker) is unavailable"},
})

PHONE = r"^\+?[0-9]{2,20}$"


def _role(*roles: str, write: bool = False):
    base = csrf_checked_operator if write else current_operator

    def dep(request: Request, op: Operator = Depends(base)) -> Operator:
        # Presence is recorded (throttled) by the session dependency itself.
        if op.role not in roles or not getattr(op, "active", True):
            raise HTTPException(status_code=403, detail=f"needs role {' or '.join(roles)}")
        return op
    return dep


ADMIN_R, ADMIN_W = _role("admin"), _role("admin", write=True)
SUP_R = _role("supervisor", "admin")


def _call(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except AdminError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message) from None


# --- bodies ------------------------------------------------------------------------------
class Window(BaseModel):
    days: list[int] = Field(default_factory=lambda: list(range(7)), description="0 = Monday ... 6 = Sunday")
    from_: str = Field(alias="from", pattern=r"^\d{2}:\d{2}$")
    to: str = Field(pattern=r"^\d{2}:\d{2}$")

    def dump(self) -> dict:
        return {"days": self.days, "from": self.from_, "to": self.to}


class Area(BaseModel):
    type: Literal["circle", "polygon"]
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    points: list[list[float]] | None = None


class TenantPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    webhook_url: str | None = Field(default=None, max_length=400, pattern=r"^https?://")


class CentreIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, pattern=PHONE)
    countries: list[str] = Field(default_factory=list, description="ISO 3166 alpha-2 codes covered")
    areas: list[Area] = Field(default_factory=list, description="circles and polygons covered")
    languages: list[str] = Field(default_factory=list, description="ISO 639-1 codes; empty = any")
    hours: list[Window] = Field(default_factory=list, description="opening windows; empty = 24/7")
    timezone: str | None = Field(default="UTC", max_length=64)
    contract: bool = Field(default=True, description="append the centre to the tenant's contract")

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
    phone: str = Field(pattern=PHONE)
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    channels: list[Literal["email", "sms", "webhook"]] | None = None


class WearerIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    birth_date: date | None = None
    language: str | None = Field(default=None, max_length=8)
    home_address: str | None = Field(default=None, max_length=400)
    home_lat: float | None = Field(default=None, ge=-90, le=90)
    home_lon: float | None = Field(default=None, ge=-180, le=180)
    medical_notes: str | None = Field(default=None, max_length=4000)
    photo_url: str | None = Field(default=None, max_length=400)
    timezone: str | None = Field(default=None, max_length=64)
    contacts: list[ContactIn] | None = Field(default=None, description="in cascade order (first is called first)")

    def dump(self, partial: bool = False) -> dict:
        d = self.model_dump(exclude_unset=partial, exclude={"contacts"})
        if self.contacts is not None:
            d["contacts"] = [c.model_dump() for c in self.contacts]
        return d


class WearerPatch(WearerIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]


class DeviceIn(BaseModel):
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="usually the IMEI")
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
    name: str = Field(min_length=1, max_length=100)
    shape: Literal["circle", "polygon"]
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    points: list[list[float]] | None = None
    schedule: list[Window] | None = Field(default=None, description="when an alert applies; none = always")
    alert_on_exit: bool = False
    alert_on_enter: bool = False

    def dump(self) -> dict:
        d = self.model_dump(exclude={"schedule"})
        d["schedule"] = [w.dump() for w in self.schedule] if self.schedule else None
        return d


class Page(BaseModel):
    items: list[dict]
    total: int
    limit: int
    offset: int


# --- tenant, centres, contract -------------------------------------------------------------
@router.get("/api/admin/tenant", tags=["admin"])
def get_tenant(request: Request, op: Operator = Depends(ADMIN_R)):
    return services(request).admin.tenant(op)


@router.patch("/api/admin/tenant", tags=["admin"])
def patch_tenant(body: TenantPatch, request: Request, op: Operator = Depends(ADMIN_W)):
    return _call(services(request).admin.update_tenant, op, body.model_dump(exclude_unset=True))


@router.get("/api/admin/centres", tags=["admin"])
def list_centres(request: Request, op: Operator = Depends(ADMIN_R)):
    return services(request).admin.list_centres(op)


@router.post("/api/admin/centres", status_code=201, tags=["admin"])
def create_centre(body: CentreIn, request: Request, op: Operator = Depends(ADMIN_W)):
    return _call(services(request).admin.create_centre, op, body.dump())


@router.patch("/api/admin/centres/{centre_id}", tags=["admin"])
def patch_centre(centre_id: int, body: CentrePatch, request: Request, op: Operator = Depends(ADMIN_W)):
    return _call(services(request).admin.update_centre, op, centre_id, body.dump(partial=True))


@router.put("/api/admin/contract", tags=["admin"])
def put_contract(body: ContractIn, request: Request, op: Operator = Depends(ADMIN_W)):
    return _call(services(request).admin.set_contract, op, body.centre_ids)


# --- wearers -----------------------------------------------------------------------------------
@router.get("/api/admin/wearers", response_model=Page, tags=["admin"])
def list_wearers(request: Request, q: str | None = Query(None, max_length=100),
                 limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
                 op: Operator = Depends(ADMIN_R)):
    return services(request).admin.list_wearers(op, q=q, limit=limit, offset=offset)


@router.post("/api/admin/wearers", status_code=201, tags=["admin"])
def create_wearer(body: WearerIn, request: Request, op: Operator = Depends(ADMIN_W)):
    return _call(services(request).admin.create_wearer, op, body.dump())


@router.get("/api/admin/wearers/{wearer_id}", tags=["admin"])
def get_wearer(wearer_id: int, request: Request, op: Operator = Depends(ADMIN_R)):
    return _call(services(request).admin.get_wearer, op, wearer_id)


@router.patch("/api/admin/wearers/{wearer_id}", tags=["admin"])
def patch_wearer(wearer_id: int, body: WearerPatch, request: Request, op: Operator = Depends(ADMIN_W)):
    return _call(services(request).admin.update_wearer, op, wearer_id, body.dump(partial=True))


@router.get("/api/admin/wearers/{wearer_id}/geofences", tags=["admin"])
def list_geofences(wearer_id: int, request: Request, op: Operator = Depends(ADMIN_R)):
    return _call(services(request).admin.list_geofences, op, wearer_id)


@router.post("/api/admin/wearers/{wearer_id}/geofences", status_code=201, tags=["admin"])
def create_geofence(wearer_id: int, body: GeofenceIn, request: Request, op: Operator = Depends(ADMIN_W)):
    return _call(services(request).admin.create_geofence, op, wearer_id, body.dump())


@router.delete("/api/admin/geofences/{geofence_id}", status_code=204, tags=["admin"])
def delete_geofence(geofence_id: int, request: Request, op: Operator = Depends(ADMIN_W)):
    _call(services(request).admin.delete_geofence, op, geofence_id)


# --- devices -------------------------------------------------------------------------------------
@router.get("/api/admin/devices", response_model=Page, tags=["admin"])
def list_devices(request: Request, presence: Literal["unknown", "online", "suspect", "offline"] | None = None,
                 wearer_id: int | None = None, limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
                 op: Operator = Depends(ADMIN_R)):
    return services(request).admin.list_devices(op, presence=presence, wearer_id=wearer_id, limit=limit,
                                                offset=offset)


@router.post("/api/admin/devices", status_code=201, response_model=Secret, tags=["admin"])
def provision(body: DeviceIn, request: Request, op: Operator = Depends(ADMIN_W)):
    """Provision a device: returns its id and secret, once. The broker's password
    file is rewritten and reloaded before the response."""
    return _call(services(request).admin.provision, op, body.id, body.wearer_id)


@router.get("/api/admin/devices/{device_id}", tags=["admin"])
def get_device(device_id: str, request: Request, op: Operator = Depends(ADMIN_R)):
    return _call(services(request).admin.get_device, op, device_id)


@router.post("/api/admin/devices/{device_id}/rotate", response_model=Secret, tags=["admin"])
def rotate(device_id: str, request: Request, op: Operator = Depends(ADMIN_W)):
    """A new secret, shown once. The old one stops working at once and a session
    using it is disconnected by the broker's reload."""
    return _call(services(request).admin.rotate, op, device_id)


@router.patch("/api/admin/devices/{device_id}", tags=["admin"])
def assign(device_id: str, body: DeviceAssign, request: Request, op: Operator = Depends(ADMIN_W)):
    return _call(services(request).admin.assign_device, op, device_id, body.wearer_id)


@router.put("/api/admin/devices/{device_id}/config", tags=["admin"])
def put_config(device_id: str, body: ConfigIn, request: Request, op: Operator = Depends(ADMIN_W)):
    """A new config version, published retained to the watch."""
    return _call(services(request).admin.push_config, op, device_id, body.model_dump(exclude_none=True))


# --- operators -------------------------------------------------------------------------------------
@router.get("/api/admin/operators", response_model=Page, tags=["admin"])
def list_operators(request: Request, centre_id: int | None = None, limit: int = Query(100, ge=1, le=500),
                   offset: int = Query(0, ge=0), op: Operator = Depends(ADMIN_R)):
    return services(request).admin.list_operators(op, centre_id=centre_id, limit=limit, offset=offset)


@router.post("/api/admin/operators", status_code=201, tags=["admin"])
def create_operator(body: OperatorIn, request: Request, op: Operator = Depends(ADMIN_W)):
    return _call(services(request).admin.create_operator, op, body.model_dump())


@router.patch("/api/admin/operators/{operator_id}", tags=["admin"])
def patch_operator(operator_id: int, body: OperatorPatch, request: Request, op: Operator = Depends(ADMIN_W)):
    return _call(services(request).admin.update_operator, op, operator_id, body.model_dump(exclude_unset=True))


@router.get("/api/admin/vsim-profiles", tags=["admin"])
def list_vsim(request: Request, country: str | None = Query(None, min_length=2, max_length=2),
              op: Operator = Depends(ADMIN_R)):
    return services(request).admin.list_vsim(country)


@router.get("/api/admin/audit", response_model=Page, tags=["admin"])
def audit(request: Request, action: str | None = Query(None, max_length=64), limit: int = Query(100, ge=1, le=500),
          offset: int = Query(0, ge=0), op: Operator = Depends(ADMIN_R)):
    return services(request).admin.audit(op, action=action, limit=limit, offset=offset)


# --- supervision ---------------------------------------------------------------------------------------
def _period(request: Request, start: date | None, end: date | None) -> tuple[datetime, datetime]:
    today = services(request).clock.now().date()
    end_d = end or today
    start_d = start or (end_d - timedelta(days=6))
    if start_d > end_d or (end_d - start_d).days > 366:
        raise HTTPException(status_code=422, detail="from must be before to, at most a year apart")
    return datetime.combine(start_d, datetime.min.time()), datetime.combine(end_d + timedelta(days=1),
                                                                            datetime.min.time())


@router.get("/api/supervisor/sla", tags=["supervisor"])
def sla(request: Request, start: date | None = Query(None, alias="from", description="first day (UTC), default: 6 days ago"),
        end: date | None = Query(None, alias="to", description="last day (UTC), inclusive, default: today"),
        op: Operator = Depends(SUP_R)):
    """Alarms accepted within the SLA targets (80 % within 10 s, 98.5 % within 40 s
    by default, PERS_SLA_TARGETS), in total, by day and by operator."""
    svc = services(request)
    a, b = _period(request, start, end)
    return sla_report(svc.sm, op.tenant_id, a, b, targets=svc.settings.sla_target_list(), now=svc.clock.now())


@router.get("/api/supervisor/report", tags=["supervisor"])
def report(request: Request, start: date | None = Query(None, alias="from"), end: date | None = Query(None, alias="to"),
           op: Operator = Depends(SUP_R)):
    """Cases opened in the period by kind, outcome and centre; escalations; still open."""
    a, b = _period(request, start, end)
    return services(request).admin.case_report(op, a, b)


@router.get("/api/supervisor/operators", tags=["supervisor"])
def supervisor_operators(request: Request, op: Operator = Depends(SUP_R)):
    """The tenant's operators with their presence (last authenticated activity;
    "present" within PERS_OPERATOR_PRESENT_S) and how many open cases each holds."""
    svc = services(request)
    return svc.admin.operator_presence(op, present_window_s=svc.settings.operator_present_s)


@router.get("/api/supervisor/devices", tags=["supervisor"])
def supervisor_devices(request: Request, low_battery_pct: int = Query(20, ge=1, le=100),
                       limit: int = Query(200, ge=1, le=500), op: Operator = Depends(SUP_R)):
    """Devices that need attention: not online (suspect or offline) or with a
    battery at or below ``low_battery_pct``; with their wearer's name."""
    return services(request).admin.devices_needing_attention(op, low_battery_pct=low_battery_pct, limit=limit)
