"""REST API under /api, health and metrics."""
from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud.api.deps import SESSION_COOKIE, CsrfOperator, CurrentOperator, PageLimit, client_address, services
from cloud.api.errors import error_responses
from cloud.api.exposure import metrics_allowed
from cloud.api.schemas.auth import LoginIn, OperatorBrief, OperatorOut, PasswordChange, PasswordChanged
from cloud.api.schemas.cases import CallIn, CaseOut, DispatchIn, MessageIn, NoteIn, ResolveIn
from cloud.api.schemas.common import CaseId
from cloud.api.schemas.system import DeadLetterOut
from cloud.domain.quarantine import listing
from cloud.store.db import database_answers
from cloud.store.models import Operator

# Every /api route may answer these; each documents them so clients (and the
# schema fuzzer) know what to expect.
router = APIRouter(responses=error_responses(400, 401, 403, 404, 409, 422))


def _op_out(op: Operator, csrf: str | None = None) -> OperatorOut:
    return OperatorOut(id=op.id, username=op.username, display_name=op.display_name, role=op.role,
                       tenant_id=op.tenant_id, csrf_token=csrf)


@router.post("/api/auth/login", response_model=OperatorOut, tags=["auth"], responses=error_responses(429))
def login(body: LoginIn, request: Request, response: Response):
    """A session (cookie) and its CSRF token. Failed logins are throttled by (user name,
    client address) and by client address: 429 with Retry-After while one waits."""
    svc = services(request)
    result = svc.accounts.login(body.username, body.password, client_address(request))
    response.set_cookie(SESSION_COOKIE, result.token, httponly=True, samesite="strict",
                        secure=svc.settings.secure_cookies, max_age=svc.settings.session_hours * 3600, path="/")
    return _op_out(result.operator, result.csrf_token)


@router.post("/api/auth/logout", status_code=204, tags=["auth"])
def logout(request: Request, response: Response, op: CsrfOperator):
    """Ends this session; its open live feeds close within seconds."""
    services(request).accounts.logout(request.cookies.get(SESSION_COOKIE, ""), op)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.post("/api/auth/password", response_model=PasswordChanged, tags=["auth"],
             responses=error_responses(429))
def change_password(body: PasswordChange, request: Request, op: CsrfOperator):
    """One's own password, knowing the current one (403 if wrong, throttled like a
    login). Every other session of the operator ends; this one goes on."""
    ended = services(request).accounts.change_password(op, request.cookies.get(SESSION_COOKIE, ""),
                                                       body.current_password, body.new_password,
                                                       client_address(request))
    return PasswordChanged(other_sessions_ended=ended)


@router.get("/api/me", response_model=OperatorOut, tags=["auth"])
def me(request: Request, op: CurrentOperator):
    found = services(request).accounts.session_operator(request.cookies.get(SESSION_COOKIE))
    return _op_out(op, found[1] if found else None)


@router.get("/api/operators", response_model=list[OperatorBrief], tags=["auth"])
def list_operators(request: Request, op: CurrentOperator):
    """The operators of one's own tenant, so the console can say who took a case."""
    return [OperatorBrief(**o) for o in services(request).accounts.colleagues(op)]


@router.get("/api/cases", response_model=list[CaseOut], tags=["cases"])
def list_cases(request: Request, op: CurrentOperator, status: Literal["open", "all"] = "open",
               limit: PageLimit = 100,
               offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0):
    return services(request).cases.list_cases(op, open_only=status == "open", limit=limit, offset=offset)


@router.get("/api/quarantine", response_model=list[DeadLetterOut], tags=["system"])
def list_quarantine(request: Request, op: CurrentOperator, limit: PageLimit = 100):
    """Messages from this tenant's watches that could not be stored and were kept as
    dead letters (newest first), with the case opened for an alarm among them."""
    return listing(services(request).sm, op.tenant_id, limit=limit)


@router.get("/api/cases/{case_id}", response_model=CaseOut, tags=["cases"])
def get_case(case_id: CaseId, request: Request, op: CurrentOperator):
    return services(request).cases.get_case(op, case_id)


@router.post("/api/cases/{case_id}/claim", response_model=CaseOut, tags=["cases"])
def claim_case(case_id: CaseId, request: Request, op: CsrfOperator):
    return services(request).cases.claim(op, case_id)


@router.post("/api/cases/{case_id}/resolve", response_model=CaseOut, tags=["cases"])
def resolve_case(case_id: CaseId, body: ResolveIn, request: Request, op: CsrfOperator):
    return services(request).cases.resolve(op, case_id, body.outcome, body.note)


@router.post("/api/cases/{case_id}/call", response_model=CaseOut, tags=["cases"])
def call_back(case_id: CaseId, body: CallIn, request: Request, op: CsrfOperator):
    """Make the watch dial the call centre (or `number`), hands-free."""
    return services(request).cases.call_back(op, case_id, body.number)


@router.post("/api/cases/{case_id}/locate", response_model=CaseOut, tags=["cases"])
def locate(case_id: CaseId, request: Request, op: CsrfOperator):
    return services(request).cases.locate(op, case_id)


@router.post("/api/cases/{case_id}/message", response_model=CaseOut, tags=["cases"])
def message(case_id: CaseId, body: MessageIn, request: Request, op: CsrfOperator):
    return services(request).cases.message(op, case_id, body.text, body.ack_required)


@router.post("/api/cases/{case_id}/notify-next-contact", response_model=CaseOut, tags=["cases"])
def notify_next_contact(case_id: CaseId, request: Request, op: CsrfOperator):
    return services(request).cases.notify_next_contact(op, case_id)


@router.post("/api/cases/{case_id}/dispatch", response_model=CaseOut, tags=["cases"])
def dispatch(case_id: CaseId, body: DispatchIn, request: Request, op: CsrfOperator):
    return services(request).cases.dispatch(op, case_id, body.service, body.reference)


@router.post("/api/cases/{case_id}/notes", response_model=CaseOut, tags=["cases"])
def add_note(case_id: CaseId, body: NoteIn, request: Request, op: CsrfOperator):
    return services(request).cases.add_note(op, case_id, body.text)


@router.get("/healthz", tags=["system"], responses=error_responses(503))
def healthz(request: Request):
    svc = services(request)
    db_ok = database_answers(svc.sm)
    mqtt_ok = svc.bridge.connected.is_set() if svc.bridge else None
    # A stuck ingest (a message retried for ever, a wedged worker) fails the check:
    # the broker and the database may both answer while no alarm gets through.
    oldest = svc.bridge.oldest_waiting_s() if svc.bridge else 0.0
    ingest_ok = oldest <= svc.settings.ingest_stuck_after_s
    ok = db_ok and mqtt_ok is not False and ingest_ok
    body = {"ok": ok, "db": db_ok, "mqtt": mqtt_ok, "ingest": ingest_ok, "ingest_oldest_waiting_s": round(oldest, 3)}
    return Response(content=json.dumps(body, separators=(",", ":")), media_type="application/json",
                    status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse, tags=["system"], responses=error_responses(401))
def metrics_endpoint(request: Request):
    """Prometheus; a token or a local scraper (cloud/api/exposure.py), else 404."""
    if not metrics_allowed(request):
        return PlainTextResponse("Not Found", status_code=404)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
