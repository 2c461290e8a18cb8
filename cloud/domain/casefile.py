"""Opening, routing and publishing cases: shared by the ingest (alerts), the
geofence checks and offline detection, so every case is opened the same way."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud import metrics
from cloud.domain.lifecycle import OPEN_STATUSES, PRIORITY, move
from cloud.domain.routing import decide_for_case
from cloud.domain.uow import Tx
from cloud.domain.views import case_view
from cloud.store.models import AlertCase, CaseEvent, Device


def open_case_of(s: Session, device_id: str) -> AlertCase | None:
    return s.scalar(select(AlertCase).where(AlertCase.device_id == device_id, AlertCase.status.in_(OPEN_STATUSES))
                    .order_by(AlertCase.id.desc()))


def route_case(s: Session, case: AlertCase, now: datetime, *, present_window_s: int = 120,
               country: str | None = None) -> bool:
    """Route a new case (status new -> routed). Returns False when no centre is contracted."""
    decision = decide_for_case(s, case, now, present_window_s, country=country)
    if decision.centre_id is None:
        s.add(CaseEvent(case_id=case.id, at=now, actor="system", action="unrouted",
                        detail={"reasons": decision.reasons}))
        return False
    case.centre_id = decision.centre_id
    case.tried_centres = [decision.centre_id]
    move(s, case, "routed", actor="system", now=now, audit=False,
         detail={"centre_id": decision.centre_id, "basis": decision.basis, "reasons": decision.reasons,
                 "path": decision.order})
    metrics.ROUTED.labels(decision.basis).inc()
    return True


def open_system_case(s: Session, device: Device, kind: str, first_mid: str, now: datetime, *,
                     detail: dict, lat: float | None = None, lon: float | None = None,
                     present_window_s: int = 120) -> tuple[AlertCase, bool]:
    """A case the system opens (geofence exit, device offline). If the device
    already has an open case, the event joins it instead: one emergency, one case.
    Returns (case, opened)."""
    case = open_case_of(s, device.id)
    actor = "system"
    if case is not None:
        if PRIORITY.get(kind, 9) < case.priority:
            case.priority, case.kind = PRIORITY[kind], kind
        s.add(CaseEvent(case_id=case.id, at=now, actor=actor, action=f"{kind}_joined", detail=detail))
        return case, False
    case = AlertCase(tenant_id=device.tenant_id, device_id=device.id, wearer_id=device.wearer_id, kind=kind,
                     priority=PRIORITY.get(kind, 9), status="new", first_mid=first_mid, press_count=1,
                     late=False, opened_at=now, lat=lat, lon=lon, loc_src="gnss" if lat is not None else None,
                     escalation_level=0, cascade_next=0, wearer_cancelled=False)
    s.add(case)
    s.flush()
    s.add(CaseEvent(case_id=case.id, at=now, actor=actor, action="opened", detail={"kind": kind, **detail}))
    route_case(s, case, now, present_window_s=present_window_s)
    metrics.CASES_OPENED.labels(kind).inc()
    return case, True


def publish_case(tx: Tx, events, case: AlertCase, now: datetime, extra: dict | None = None) -> dict:
    tx.session.flush()
    view = case_view(tx.session, case, today=now.date())
    tx.after_commit(lambda: events.publish(case.tenant_id, {"type": "case", "case": view}))
    if extra is not None:
        tx.after_commit(lambda: events.publish(case.tenant_id, extra))
    return view
