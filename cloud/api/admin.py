"""Administration and supervision API: everything under /api/admin/ needs the
admin role, /api/supervisor/ needs supervisor or admin (the convention the
tenant-isolation matrix in tests/cloud/api/test_tenant_isolation.py checks). Scoped to the caller's tenant;
another tenant's objects answer 404. Writes need the CSRF header, like every
state-changing call of the console."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from cloud.api.deps import (
    AdminReader,
    AdminWriter,
    PageLimit,
    PageOffset,
    SupervisorReader,
    SupervisorWriter,
    services,
)
from cloud.api.errors import error_responses
from cloud.api.schemas.admin import (
    CentreIn,
    CentrePatch,
    ConfigIn,
    ContractIn,
    DeviceAssign,
    DeviceIn,
    GeofenceIn,
    OperatorIn,
    OperatorPatch,
    ReceiverIn,
    ReceiverPatch,
    ReceiverZone,
    ReminderSchedule,
    Secret,
    TenantPatch,
    WearerIn,
    WearerPatch,
)
from cloud.api.schemas.common import Page
from cloud.domain.escalation import sla_report
from cloud.domain.reminders import ReminderAdmin
from cloud.domain.welfare import WelfareSettings

# Every route may answer these; documented so that clients (and schemathesis) know them.
router = APIRouter(responses=error_responses(400, 401, 403, 404, 409, 503))


# --- tenant, centres, contract -------------------------------------------------------------
@router.get("/api/admin/tenant", tags=["admin"])
def get_tenant(request: Request, op: AdminReader):
    return services(request).admin.tenant(op)


@router.patch("/api/admin/tenant", tags=["admin"])
def patch_tenant(body: TenantPatch, request: Request, op: AdminWriter):
    return services(request).admin.update_tenant(op, body.model_dump(exclude_unset=True))


@router.get("/api/admin/centres", tags=["admin"])
def list_centres(request: Request, op: AdminReader):
    return services(request).admin.list_centres(op)


@router.post("/api/admin/centres", status_code=201, tags=["admin"])
def create_centre(body: CentreIn, request: Request, op: AdminWriter):
    return services(request).admin.create_centre(op, body.dump())


@router.patch("/api/admin/centres/{centre_id}", tags=["admin"])
def patch_centre(centre_id: int, body: CentrePatch, request: Request, op: AdminWriter):
    return services(request).admin.update_centre(op, centre_id, body.dump(partial=True))


@router.put("/api/admin/contract", tags=["admin"])
def put_contract(body: ContractIn, request: Request, op: AdminWriter):
    return services(request).admin.set_contract(op, body.centre_ids)


# --- alarm receivers (SIA DC-09 forwarding, docs/forwarding.md) -------------------------------
_NULLABLE = ("backup_host", "backup_port", "receiver_no", "aes_key")


@router.get("/api/admin/receivers", tags=["admin"])
def list_receivers(request: Request, op: AdminReader):
    return services(request).admin.list_receivers(op)


@router.post("/api/admin/receivers", status_code=201, tags=["admin"])
def create_receiver(body: ReceiverIn, request: Request, op: AdminWriter):
    return services(request).admin.create_receiver(op, body.model_dump())


@router.patch("/api/admin/receivers/{receiver_id}", tags=["admin"])
def patch_receiver(receiver_id: int, body: ReceiverPatch, request: Request, op: AdminWriter):
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k in _NULLABLE}
    return services(request).admin.update_receiver(op, receiver_id, changes)


@router.post("/api/admin/receivers/{receiver_id}/test", status_code=202, tags=["admin"])
def test_receiver(receiver_id: int, request: Request, op: AdminWriter):
    """Queue a test report (Contact ID 602 / SIA RP) to the receiver."""
    return services(request).admin.test_receiver(op, receiver_id)


@router.put("/api/admin/devices/{device_id}/receiver-zone", tags=["admin"])
def put_receiver_zone(device_id: str, body: ReceiverZone, request: Request, op: AdminWriter):
    return services(request).admin.set_receiver_zone(op, device_id, body.zone)


@router.get("/api/supervisor/forwarding", tags=["supervisor"])
def forwarding_status(request: Request, op: SupervisorReader):
    """Forwarded events not acknowledged yet, or given up, newest first."""
    return services(request).admin.forwarding_status(op)


# --- wearers -----------------------------------------------------------------------------------
@router.get("/api/admin/wearers", response_model=Page, tags=["admin"])
def list_wearers(request: Request, op: AdminReader, q: Annotated[str | None, Query(max_length=100)] = None,
                 limit: PageLimit = 50, offset: PageOffset = 0):
    return services(request).admin.list_wearers(op, q=q, limit=limit, offset=offset)


@router.post("/api/admin/wearers", status_code=201, tags=["admin"])
def create_wearer(body: WearerIn, request: Request, op: AdminWriter):
    return services(request).admin.create_wearer(op, body.dump())


@router.get("/api/admin/wearers/{wearer_id}", tags=["admin"])
def get_wearer(wearer_id: int, request: Request, op: AdminReader):
    return services(request).admin.get_wearer(op, wearer_id)


@router.patch("/api/admin/wearers/{wearer_id}", tags=["admin"])
def patch_wearer(wearer_id: int, body: WearerPatch, request: Request, op: AdminWriter):
    return services(request).admin.update_wearer(op, wearer_id, body.dump(partial=True))


@router.get("/api/admin/wearers/{wearer_id}/welfare", tags=["admin"])
def get_welfare(wearer_id: int, request: Request, op: AdminReader):
    """The wearer's welfare settings (check-in, night hours, inactivity, not worn), or null."""
    return services(request).admin.get_welfare(op, wearer_id)


@router.put("/api/admin/wearers/{wearer_id}/welfare", tags=["admin"])
def put_welfare(wearer_id: int, body: WelfareSettings | None, request: Request, op: AdminWriter):
    """Set the wearer's welfare settings (null: all off); the check-in time goes to the watch's config."""
    return services(request).admin.set_welfare(op, wearer_id, body.model_dump() if body is not None else None)


@router.get("/api/admin/wearers/{wearer_id}/geofences", tags=["admin"])
def list_geofences(wearer_id: int, request: Request, op: AdminReader):
    return services(request).admin.list_geofences(op, wearer_id)


@router.post("/api/admin/wearers/{wearer_id}/geofences", status_code=201, tags=["admin"])
def create_geofence(wearer_id: int, body: GeofenceIn, request: Request, op: AdminWriter):
    return services(request).admin.create_geofence(op, wearer_id, body.dump())


@router.delete("/api/admin/geofences/{geofence_id}", status_code=204, tags=["admin"])
def delete_geofence(geofence_id: int, request: Request, op: AdminWriter):
    services(request).admin.delete_geofence(op, geofence_id)


@router.get("/api/admin/wearers/{wearer_id}/reminders", tags=["admin"])
def get_reminders(wearer_id: int, request: Request, op: AdminReader):
    """The wearer's medication reminders, adherence (last 7 and 30 days) and latest doses."""
    return ReminderAdmin(services(request).admin).schedule(op, wearer_id)


@router.put("/api/admin/wearers/{wearer_id}/reminders", tags=["admin"])
def put_reminders(wearer_id: int, body: ReminderSchedule, request: Request, op: AdminWriter):
    """Replace the wearer's reminders; each of the wearer's watches gets them in a new config."""
    return ReminderAdmin(services(request).admin).set_schedule(
        op, wearer_id, [r.model_dump(exclude_none=True) for r in body.reminders])


# --- devices -------------------------------------------------------------------------------------
@router.get("/api/admin/devices", response_model=Page, tags=["admin"])
def list_devices(request: Request, op: AdminReader,
                 presence: Literal["unknown", "online", "suspect", "offline"] | None = None,
                 wearer_id: int | None = None, limit: PageLimit = 50, offset: PageOffset = 0):
    return services(request).admin.list_devices(op, presence=presence, wearer_id=wearer_id, limit=limit,
                                                offset=offset)


@router.post("/api/admin/devices", status_code=201, response_model=Secret, tags=["admin"])
def provision(body: DeviceIn, request: Request, op: AdminWriter):
    """Provision a device: returns its id and secret, once. The broker's password
    file is rewritten and reloaded before the response."""
    return services(request).admin.provision(op, body.id, body.wearer_id)


@router.get("/api/admin/devices/{device_id}", tags=["admin"])
def get_device(device_id: str, request: Request, op: AdminReader):
    return services(request).admin.get_device(op, device_id)


@router.post("/api/admin/devices/{device_id}/rotate", response_model=Secret, tags=["admin"])
def rotate(device_id: str, request: Request, op: AdminWriter):
    """A new secret, shown once. The old one stops working at once and a session
    using it is disconnected by the broker's reload."""
    return services(request).admin.rotate(op, device_id)


@router.patch("/api/admin/devices/{device_id}", tags=["admin"])
def assign(device_id: str, body: DeviceAssign, request: Request, op: AdminWriter):
    return services(request).admin.assign_device(op, device_id, body.wearer_id)


@router.put("/api/admin/devices/{device_id}/config", tags=["admin"])
def put_config(device_id: str, body: ConfigIn, request: Request, op: AdminWriter):
    """A new config version, published retained to the watch."""
    return services(request).admin.push_config(op, device_id, body.model_dump(exclude_none=True))


# --- operators -------------------------------------------------------------------------------------
@router.get("/api/admin/operators", response_model=Page, tags=["admin"])
def list_operators(request: Request, op: AdminReader, centre_id: int | None = None,
                   limit: PageLimit = 100, offset: PageOffset = 0):
    return services(request).admin.list_operators(op, centre_id=centre_id, limit=limit, offset=offset)


@router.post("/api/admin/operators", status_code=201, tags=["admin"])
def create_operator(body: OperatorIn, request: Request, op: AdminWriter):
    return services(request).admin.create_operator(op, body.model_dump())


@router.patch("/api/admin/operators/{operator_id}", tags=["admin"])
def patch_operator(operator_id: int, body: OperatorPatch, request: Request, op: AdminWriter):
    return services(request).admin.update_operator(op, operator_id, body.model_dump(exclude_unset=True))


@router.get("/api/admin/vsim-profiles", tags=["admin"])
def list_vsim(request: Request, op: AdminReader,
              country: Annotated[str | None, Query(min_length=2, max_length=2)] = None):
    return services(request).admin.list_vsim(country)


@router.get("/api/admin/vsim-stock", tags=["admin"])
def vsim_stock(request: Request, op: AdminReader):
    """The tenant's local vSIM profiles: free, held and expired per country with the
    low threshold, which watch holds which profile, and the low-stock warnings."""
    return services(request).admin.vsim_stock(op)


@router.get("/api/supervisor/vsim-stock", tags=["supervisor"])
def supervisor_vsim_stock(request: Request, op: SupervisorReader):
    """As /api/admin/vsim-stock: the supervisor page lists its warnings."""
    return services(request).admin.vsim_stock(op)


# --- the security audit log and login throttles (admins and supervisors) ---------------------------
AuditUser = Annotated[str | None, Query(max_length=64, description="a user name of your tenant")]
AuditAction = Annotated[str | None, Query(max_length=64, description="an action or its prefix: login, password.")]
AuditFrom = Annotated[datetime | None, Query(alias="from", description="from this time (UTC), inclusive")]
AuditTo = Annotated[datetime | None, Query(alias="to", description="until this time (UTC), exclusive")]


def _utc(t: datetime | None) -> datetime | None:
    """The database's naive UTC; a time without a zone is taken as UTC."""
    return t.astimezone(UTC).replace(tzinfo=None) if t is not None and t.tzinfo else t


def _audit(request: Request, op, user, action, start, end, limit, offset):
    return services(request).admin.audit(op, user=user, action=action, start=_utc(start), end=_utc(end),
                                         limit=limit, offset=offset)


@router.get("/api/admin/audit", response_model=Page, tags=["admin"])
def audit(request: Request, op: AdminReader, user: AuditUser = None, action: AuditAction = None,
          start: AuditFrom = None, end: AuditTo = None, limit: PageLimit = 100, offset: PageOffset = 0):
    """The tenant's audit log, newest first (as /api/supervisor/audit)."""
    return _audit(request, op, user, action, start, end, limit, offset)


@router.get("/api/supervisor/audit", response_model=Page, tags=["supervisor"])
def supervisor_audit(request: Request, op: SupervisorReader, user: AuditUser = None, action: AuditAction = None,
                     start: AuditFrom = None, end: AuditTo = None, limit: PageLimit = 100, offset: PageOffset = 0):
    """The tenant's audit log, newest first: by user (as actor or as target), action
    prefix and time range [from, to). Logins, failures, throttles, logouts, revoked
    sessions, role changes, deactivations, password changes and resets, and every
    administrative and case action."""
    return _audit(request, op, user, action, start, end, limit, offset)


@router.get("/api/supervisor/login-throttles", tags=["supervisor"])
def login_throttles(request: Request, op: SupervisorReader):
    """Failed-login throttles on the tenant's accounts (by account and client address),
    and on the addresses those accounts were tried from: failures, attempts refused,
    and until when each waits."""
    return services(request).accounts.throttles(op)


@router.delete("/api/supervisor/login-throttles/{throttle_id}", status_code=204, tags=["supervisor"])
def clear_login_throttle(throttle_id: int, request: Request, op: SupervisorWriter):
    """Let that account (or address) try again at once; audited."""
    services(request).accounts.clear_throttle(op, throttle_id)


# --- supervision ---------------------------------------------------------------------------------------
# The period of a report, ?from=...&to=... (Python names them start and end).
PeriodFrom = Annotated[date | None, Query(alias="from", description="first day (UTC), default: 6 days ago")]
PeriodTo = Annotated[date | None, Query(alias="to", description="last day (UTC), inclusive, default: today")]


def _period(request: Request, start: date | None, end: date | None) -> tuple[datetime, datetime]:
    today = services(request).clock.now().date()
    end_d = end or today
    start_d = start or (end_d - timedelta(days=6))
    if start_d > end_d or (end_d - start_d).days > 366:
        raise HTTPException(status_code=422, detail="from must be before to, at most a year apart")
    return datetime.combine(start_d, datetime.min.time()), datetime.combine(end_d + timedelta(days=1),
                                                                            datetime.min.time())


@router.get("/api/supervisor/sla", tags=["supervisor"])
def sla(request: Request, op: SupervisorReader, start: PeriodFrom = None, end: PeriodTo = None):
    """Alarms accepted within the SLA targets (80 % within 10 s, 98.5 % within 40 s
    by default, PERS_SLA_TARGETS), in total, by day and by operator."""
    svc = services(request)
    a, b = _period(request, start, end)
    return sla_report(svc.sm, op.tenant_id, a, b, targets=svc.settings.sla_target_list(), now=svc.clock.now())


@router.get("/api/supervisor/report", tags=["supervisor"])
def report(request: Request, op: SupervisorReader, start: PeriodFrom = None, end: PeriodTo = None):
    """Cases opened in the period by kind, outcome and centre; escalations; still open."""
    a, b = _period(request, start, end)
    return services(request).admin.case_report(op, a, b)


@router.get("/api/supervisor/operators", tags=["supervisor"])
def supervisor_operators(request: Request, op: SupervisorReader):
    """The tenant's operators with their presence (last authenticated activity;
    "present" within PERS_OPERATOR_PRESENT_S) and how many open cases each holds."""
    svc = services(request)
    return svc.admin.operator_presence(op, present_window_s=svc.settings.operator_present_s)


@router.get("/api/supervisor/devices", tags=["supervisor"])
def supervisor_devices(request: Request, op: SupervisorReader,
                       low_battery_pct: Annotated[int, Query(ge=1, le=100)] = 20, limit: PageLimit = 200):
    """Devices that need attention: not online (suspect or offline) or with a
    battery at or below ``low_battery_pct``; with their wearer's name."""
    return services(request).admin.devices_needing_attention(op, low_battery_pct=low_battery_pct, limit=limit)
