"""Plain-dict views of domain objects, for the API, the live feed and the console."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.store.models import AlertCase, CaseEvent, Command, Contact, Device, LocationPoint, Wearer


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() + "Z" if dt else None


def age_years(birth: date | None, today: date) -> int | None:
    if not birth:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def contact_view(c: Contact) -> dict:
    return {"id": c.id, "rank": c.rank, "name": c.name, "relation": c.relation, "phone": c.phone}


def wearer_view(w: Wearer | None, today: date, contacts: list[Contact] | None = None) -> dict | None:
    if w is None:
        return None
    view = {"id": w.id, "name": w.name, "age": age_years(w.birth_date, today), "language": w.language,
            "home_address": w.home_address, "home_lat": w.home_lat, "home_lon": w.home_lon,
            "medical_notes": w.medical_notes}
    if contacts is not None:
        view["contacts"] = [contact_view(c) for c in contacts]
    return view


def event_view(e: CaseEvent) -> dict:
    return {"id": e.id, "at": iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}


def case_view(session: Session, case: AlertCase, *, today: date, timeline: bool = False) -> dict:
    wearer = session.get(Wearer, case.wearer_id) if case.wearer_id else None
    view = {
        "id": case.id, "tenant_id": case.tenant_id, "device_id": case.device_id,
        "kind": case.kind, "priority": case.priority, "status": case.status,
        "press_count": case.press_count, "wearer_cancelled": case.wearer_cancelled, "late": case.late,
        "opened_at": iso(case.opened_at), "claimed_at": iso(case.claimed_at), "claimed_by": case.claimed_by,
        "resolved_at": iso(case.resolved_at), "outcome": case.outcome,
        "location": ({"lat": case.lat, "lon": case.lon, "acc": case.acc, "src": case.loc_src, "ts": case.loc_ts}
                     if case.lat is not None else None),
        "batt_pct": case.batt_pct, "heart_rate": case.heart_rate, "net_profile": case.net_profile,
        "wearer": wearer_view(wearer, today),
    }
    if timeline:
        events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id))
        view["timeline"] = [event_view(e) for e in events]
        if wearer is not None:
            contacts = session.scalars(select(Contact).where(Contact.wearer_id == wearer.id).order_by(Contact.rank))
            view["wearer"] = wearer_view(wearer, today, list(contacts))
        # The trail since the alarm: location history is kept apart from cases.
        points = session.scalars(select(LocationPoint)
                                 .where(LocationPoint.device_id == case.device_id,
                                        LocationPoint.received_at >= case.opened_at)
                                 .order_by(LocationPoint.received_at).limit(500))
        view["trail"] = [{"lat": p.lat, "lon": p.lon, "acc": p.acc, "src": p.src, "at": iso(p.received_at)}
                         for p in points]
        commands = session.scalars(select(Command).where(Command.case_id == case.id).order_by(Command.created_at))
        view["commands"] = [{"cid": c.cid, "type": c.type, "status": c.status, "created_at": iso(c.created_at),
                             "acked_at": iso(c.acked_at), "stage": c.payload.get("stage")} for c in commands]
    if case.claimed_at is not None:
        view["time_to_claim_s"] = (case.claimed_at - case.opened_at).total_seconds()
    return view


def device_view(d: Device) -> dict:
    return {"id": d.id, "tenant_id": d.tenant_id, "wearer_id": d.wearer_id, "fw": d.fw,
            "cfg_version": d.cfg_version, "online": d.online, "last_seen": iso(d.last_seen),
            "batt_pct": d.batt_pct}
