"""Opening, routing and publishing cases: shared by the ingest (alerts), the
geofence checks and offline detection, so every case is opened the same way.
Nothing else creates an ``AlertCase``."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud import metrics
from cloud.domain.forwarding.outbox import enqueue_case
from cloud.domain.lifecycle import OPEN_STATUSES, PRIORITY, move
from cloud.domain.ports import EventSink
from cloud.domain.routing import decide_for_case
from cloud.domain.uow import Tx
from cloud.domain.views import case_view
from cloud.store.models import Alert, AlertCase, CaseEvent, Device


def open_case_of(s: Session, device_id: str) -> AlertCase | None:
    """The device's open case (the newest, should there be more than one)."""
    return s.scalar(select(AlertCase).where(AlertCase.device_id == device_id, AlertCase.status.in_(OPEN_STATUSES))
                    .order_by(AlertCase.id.desc()))


def open_cases_of(s: Session, device_ids: Iterable[str]) -> dict[str, AlertCase]:
    """``open_case_of`` for many devices, in one query: device id -> its open case."""
    cases: dict[str, AlertCase] = {}
    for case in s.scalars(select(AlertCase).where(AlertCase.device_id.in_(device_ids),
                                                  AlertCase.status.in_(OPEN_STATUSES)).order_by(AlertCase.id)):
        cases[case.device_id] = case  # the newest open case, as open_case_of picks
    return cases


def case_of_alert(s: Session, device_id: str, mid: str | None) -> AlertCase | None:
    """The case of the device's alert ``mid`` (what a cancel refers to)."""
    if not mid:
        return None
    # The newest alert under that id: an older one is from before a reset of the watch.
    alert = s.scalar(select(Alert).where(Alert.device_id == device_id, Alert.mid == mid)
                     .order_by(Alert.id.desc()).limit(1))
    return s.get(AlertCase, alert.case_id) if alert and alert.case_id else None


def new_case(device: Device, kind: str, first_mid: str, now: datetime, *, late: bool = False,
             **fields: Any) -> AlertCase:
    """A case of the device's tenant and wearer, status new, not stored yet (the caller
    may fill in what it knows, such as a position, before ``open_case``)."""
    return AlertCase(tenant_id=device.tenant_id, device_id=device.id, wearer_id=device.wearer_id, kind=kind,
                     priority=PRIORITY.get(kind, 9), status="new", first_mid=first_mid, press_count=1,
                     late=late, opened_at=now, escalation_level=0, cascade_next=0, wearer_cancelled=False,
                     **fields)


def open_case(s: Session, case: AlertCase, *, actor: str, detail: dict[str, Any], at: datetime) -> AlertCase:
    """Store a new case and its ``opened`` event. The caller adds whatever else its
    timeline starts with, then routes it (``route_new_case``)."""
    s.add(case)
    s.flush()
    s.add(CaseEvent(case_id=case.id, at=at, actor=actor, action="opened", detail=detail))
    enqueue_case(s, case, at)  # to the alarm centres' receivers, committed with the case
    return case


def route_new_case(s: Session, case: AlertCase, now: datetime, *, present_window_s: int = 120,
                   country: str | None = None) -> bool:
    """Route a case just opened, and count it."""
    routed = route_case(s, case, now, present_window_s=present_window_s, country=country)
    metrics.CASES_OPENED.labels(case.kind).inc()
    return routed


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
                     detail: dict[str, Any], lat: float | None = None, lon: float | None = None,
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
    case = new_case(device, kind, first_mid, now, lat=lat, lon=lon, loc_src="gnss" if lat is not None else None)
    open_case(s, case, actor=actor, detail={"kind": kind, **detail}, at=now)
    route_new_case(s, case, now, present_window_s=present_window_s)
    return case, True


def publish_case(tx: Tx, events: EventSink, case: AlertCase, now: datetime,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    tx.session.flush()
    view = case_view(tx.session, case, today=now.date())
    tx.after_commit(lambda: events.publish(case.tenant_id, {"type": "case", "case": view}))
    if extra is not None:
        tx.after_commit(lambda: events.publish(case.tenant_id, extra))
    return view
