"""REST API under /api, health and metrics."""
from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as FastApiPath
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text

from cloud.api.deps import SESSION_COOKIE, csrf_checked_operator, current_operator, services
from cloud.domain.accounts import LoginRefused
from cloud.domain.cases import DISPATCH_SERVICES, OUTCOMES, CaseError
from cloud.domain.quarantine import listing
from cloud.store.models import Operator

class ErrorOut(BaseModel):
    detail: str | list | dict


def _errors(*codes: int) -> dict:
    text = {400: "Bad request", 401: "Not logged in", 403: "Forbidden (role, ownership or CSRF token)",
            404: "No such object in your tenant", 409: "Conflicts with the case's state",
            422: "Invalid request", 429: "Too many failed logins", 503: "Not ready"}
    return {c: {"model": ErrorOut, "description": text[c]} for c in codes}


# Every /api route may answer these; each documents them so clients (and the
# schema fuzzer) know what to expect.
router = APIRouter(responses=_errors(400, 401, 403, 404, 409, 422))

# Ids are database integers: bound them so an absurd id is a 422, not a crash.
CaseId = Annotated[int, FastApiPath(ge=1, le=2**31 - 1)]


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class OperatorOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    tenant_id: int
    csrf_token: str | None = None


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


class TrailPoint(BaseModel):
    lat: float
    lon: float
    acc: float | None = None
    src: str
    at: str


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
    text: str


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
    # What the watch got wrong in its alarms (dropped fields, a wrong clock), and in words.
    flags: list[dict] = []
    warnings: list[str] = []


def _op_out(op: Operator, csrf: str | None = None) -> OperatorOut:
    return OperatorOut(id=op.id, username=op.username, display_name=op.display_name, role=op.role,
                       tenant_id=op.tenant_id, csrf_token=csrf)


def _case_error(exc: CaseError) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.message)


@router.post("/api/auth/login", response_model=OperatorOut, tags=["auth"], responses=_errors(429))
def login(body: LoginIn, request: Request, response: Response):
    svc = services(request)
    client = request.client.host if request.client else "?"
    try:
        result = svc.accounts.login(body.username, body.password, client)
    except LoginRefused as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message) from None
    response.set_cookie(SESSION_COOKIE, result.token, httponly=True, samesite="strict",
                        secure=svc.settings.secure_cookies, max_age=svc.settings.session_hours * 3600, path="/")
    return _op_out(result.operator, result.csrf_token)


@router.post("/api/auth/logout", status_code=204, tags=["auth"])
def logout(request: Request, response: Response, op: Operator = Depends(csrf_checked_operator)):
    services(request).accounts.logout(request.cookies.get(SESSION_COOKIE, ""), op)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/api/me", response_model=OperatorOut, tags=["auth"])
def me(request: Request, op: Operator = Depends(current_operator)):
    found = services(request).accounts.session_operator(request.cookies.get(SESSION_COOKIE))
    return _op_out(op, found[1] if found else None)


class OperatorBrief(BaseModel):
    id: int
    display_name: str
    role: str


@router.get("/api/operators", response_model=list[OperatorBrief], tags=["auth"])
def list_operators(request: Request, op: Operator = Depends(current_operator)):
    """The operators of one's own tenant, so the console can say who took a case."""
    from sqlalchemy import select
    with services(request).sm() as s:
        rows = s.scalars(select(Operator).where(Operator.tenant_id == op.tenant_id).order_by(Operator.id))
        return [OperatorBrief(id=o.id, display_name=o.display_name, role=o.role) for o in rows]


@router.get("/api/cases", response_model=list[CaseOut], tags=["cases"])
def list_cases(request: Request, status: Literal["open", "all"] = "open",
               limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000),
               op: Operator = Depends(current_operator)):
    return services(request).cases.list_cases(op, open_only=status == "open", limit=limit, offset=offset)


class DeadLetterOut(BaseModel):
    id: int
    received_at: str
    last_at: str
    count: int
    device_id: str | None = None
    topic: str
    reason: str
    detail: str | None = None
    case_id: int | None = None
    payload: str


@router.get("/api/quarantine", response_model=list[DeadLetterOut], tags=["system"])
def list_quarantine(request: Request, limit: int = Query(100, ge=1, le=500),
                    op: Operator = Depends(current_operator)):
    """Messages from this tenant's watches that could not be stored and were kept as
    dead letters (newest first), with the case opened for an alarm among them."""
    return listing(services(request).sm, op.tenant_id, limit=limit)


@router.get("/api/cases/{case_id}", response_model=CaseOut, tags=["cases"])
def get_case(case_id: CaseId, request: Request, op: Operator = Depends(current_operator)):
    try:
        return services(request).cases.get_case(op, case_id)
    except CaseError as exc:
        raise _case_error(exc) from None


@router.post("/api/cases/{case_id}/claim", response_model=CaseOut, tags=["cases"])
def claim_case(case_id: CaseId, request: Request, op: Operator = Depends(csrf_checked_operator)):
    try:
        return services(request).cases.claim(op, case_id)
    except CaseError as exc:
        raise _case_error(exc) from None


@router.post("/api/cases/{case_id}/resolve", response_model=CaseOut, tags=["cases"])
def resolve_case(case_id: CaseId, body: ResolveIn, request: Request, op: Operator = Depends(csrf_checked_operator)):
    try:
        return services(request).cases.resolve(op, case_id, body.outcome, body.note)
    except CaseError as exc:
        raise _case_error(exc) from None


def _act(request: Request, action, *args):
    try:
        return action(*args)
    except CaseError as exc:
        raise _case_error(exc) from None


@router.post("/api/cases/{case_id}/call", response_model=CaseOut, tags=["cases"])
def call_back(case_id: CaseId, body: CallIn, request: Request, op: Operator = Depends(csrf_checked_operator)):
    """Make the watch dial the call centre (or `number`), hands-free."""
    return _act(request, services(request).cases.call_back, op, case_id, body.number)


@router.post("/api/cases/{case_id}/locate", response_model=CaseOut, tags=["cases"])
def locate(case_id: CaseId, request: Request, op: Operator = Depends(csrf_checked_operator)):
    return _act(request, services(request).cases.locate, op, case_id)


@router.post("/api/cases/{case_id}/message", response_model=CaseOut, tags=["cases"])
def message(case_id: CaseId, body: MessageIn, request: Request, op: Operator = Depends(csrf_checked_operator)):
    return _act(request, services(request).cases.message, op, case_id, body.text, body.ack_required)


@router.post("/api/cases/{case_id}/notify-next-contact", response_model=CaseOut, tags=["cases"])
def notify_next_contact(case_id: CaseId, request: Request, op: Operator = Depends(csrf_checked_operator)):
    return _act(request, services(request).cases.notify_next_contact, op, case_id)


@router.post("/api/cases/{case_id}/dispatch", response_model=CaseOut, tags=["cases"])
def dispatch(case_id: CaseId, body: DispatchIn, request: Request, op: Operator = Depends(csrf_checked_operator)):
    return _act(request, services(request).cases.dispatch, op, case_id, body.service, body.reference)


@router.post("/api/cases/{case_id}/notes", response_model=CaseOut, tags=["cases"])
def add_note(case_id: CaseId, body: NoteIn, request: Request, op: Operator = Depends(csrf_checked_operator)):
    return _act(request, services(request).cases.add_note, op, case_id, body.text)


@router.get("/healthz", tags=["system"], responses=_errors(503))
def healthz(request: Request):
    svc = services(request)
    try:
        with svc.sm() as s:
            s.execute(text("SELECT 1"))
        db_ok = True
    except Exception:
        db_ok = False
    mqtt_ok = svc.bridge.connected.is_set() if svc.bridge else None
    # A stuck ingest (a message retried for ever, a wedged worker) fails the check:
    # the broker and the database may both answer while no alarm gets through.
    oldest = svc.bridge.oldest_waiting_s() if svc.bridge else 0.0
    ingest_ok = oldest <= svc.settings.ingest_stuck_after_s
    ok = db_ok and mqtt_ok is not False and ingest_ok
    body = {"ok": ok, "db": db_ok, "mqtt": mqtt_ok, "ingest": ingest_ok, "ingest_oldest_waiting_s": round(oldest, 3)}
    return Response(content=json.dumps(body, separators=(",", ":")), media_type="application/json",
                    status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse, tags=["system"])
def metrics_endpoint():
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
