"""Plain-dict views of domain objects, for the API, the live feed and the console."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, overload

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.domain.geo import location_label
from cloud.domain.phones import national
from cloud.store.models import (
    AlertCase,
    CallCentre,
    CaseEvent,
    Command,
    Contact,
    Device,
    Geofence,
    GeofenceEvent,
    LocationPoint,
    Operator,
    Tenant,
    VsimProfilePool,
    Wearer,
)


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() + "Z" if dt else None


def age_years(birth: date | None, today: date) -> int | None:
    if not birth:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def contact_view(c: Contact, full: bool = False) -> dict[str, Any]:
    view = {"id": c.id, "rank": c.rank, "name": c.name, "relation": c.relation, "phone": c.phone,
            "phone_display": national(c.phone)}  # read aloud as in its own country
    if full:
        view.update(email=c.email, channels=c.channels)
    return view


@overload
def wearer_view(w: Wearer, today: date, contacts: list[Contact] | None = None) -> dict[str, Any]: ...
@overload
def wearer_view(w: None, today: date, contacts: list[Contact] | None = None) -> None: ...
@overload
def wearer_view(w: Wearer | None, today: date, contacts: list[Contact] | None = None) -> dict[str, Any] | None: ...


def wearer_view(w: Wearer | None, today: date, contacts: list[Contact] | None = None) -> dict[str, Any] | None:
    if w is None:
        return None
    view: dict[str, Any] = {"id": w.id, "name": w.name, "age": age_years(w.birth_date, today), "language": w.language,
            "home_address": w.home_address, "home_lat": w.home_lat, "home_lon": w.home_lon,
            "medical_notes": w.medical_notes, "photo_url": w.photo_url}
    if contacts is not None:
        view["contacts"] = [contact_view(c) for c in contacts]
    return view


def event_view(e: CaseEvent) -> dict[str, Any]:
    return {"id": e.id, "at": iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}


_FIELD_WARNING = {
    "ts": "Watch clock wrong: its times are not used",
    "loc": "Position from the watch unusable",
    "message": "Alarm message unreadable: kept in quarantine",
    "v": "Alarm in an unknown format version",
    "batt": "Battery reading unusable",
    "vitals": "Heart-rate reading unusable",
    "cell": "Cell information unusable",
}


def case_warnings(case: AlertCase) -> list[str]:
    """What the operator must know the watch got wrong, in words: from the case's flags
    (cloud/domain/ingest/) and from what the case lacks."""
    out: list[str] = []
    for flag in case.flags or []:
        field = flag.get("field", "")
        if field == "kind":
            text = f"Alarm type '{flag.get('got', '?')}' not understood: handled as SOS"
        elif field == "mid":
            text = ("Watch probably reset: it re-used a message id" if "reset" in flag.get("problem", "")
                    else "Alarm without a readable message id")
        else:
            text = _FIELD_WARNING.get(field.split(".")[0], f"Watch sent an unusable '{field}': ignored")
        if text not in out:
            out.append(text)
    if case.lat is None:
        out.append("Position unknown")
    return out


def battery_view(device: Device | None, case: AlertCase) -> dict[str, Any] | None:
    """One battery figure for a watch, with the time it was received: the device's
    latest reading (alarms, position reports and status all update it), or, from
    before readings had a time, the alarm's own figure at the alarm's time."""
    if device is not None and device.batt_pct is not None and device.batt_at is not None:
        return {"pct": device.batt_pct, "at": iso(device.batt_at)}
    if case.batt_pct is not None:
        return {"pct": case.batt_pct, "at": iso(case.opened_at)}
    return None


WELFARE_REASON_KINDS = ("low_battery", "not_worn", "checkin", "inactivity")


def reason_view(session: Session, case: AlertCase) -> str | None:
    """A welfare or technical alarm in the operator's words ("Watch not worn since
    10:40", "Battery 12 %: charge today"), from what opened it (cloud/domain/welfare.py)."""
    if case.kind not in WELFARE_REASON_KINDS:
        return None
    if case.kind == "low_battery":
        return f"Battery {case.batt_pct} %: charge today" if case.batt_pct is not None else "Battery low: charge today"
    key = "checkin_at" if case.kind == "checkin" else "since"
    details = session.scalars(select(CaseEvent.detail).where(CaseEvent.case_id == case.id,
                                                             CaseEvent.action.in_(("opened", f"{case.kind}_joined")))
                              .order_by(CaseEvent.id.desc()))
    d = next((x for x in details if x and key in x), None) or {}
    if case.kind == "not_worn":
        return f"Watch not worn since {d.get('since_local', '?')}"
    if case.kind == "checkin":
        return f"No answer to the {d.get('checkin_at', '?')} \"Are you OK?\" within {d.get('window_min', '?')} min"
    return f"No movement since {d.get('since_local', '?')} ({d.get('daytime_h', '?')} daytime hours)"


def case_view(session: Session, case: AlertCase, *, today: date, timeline: bool = False) -> dict[str, Any]:
    wearer = session.get(Wearer, case.wearer_id) if case.wearer_id else None
    view = {
        "id": case.id, "tenant_id": case.tenant_id, "device_id": case.device_id,
        "kind": case.kind, "priority": case.priority, "status": case.status,
        "press_count": case.press_count, "wearer_cancelled": case.wearer_cancelled, "late": case.late,
        "opened_at": iso(case.opened_at), "claimed_at": iso(case.claimed_at), "claimed_by": case.claimed_by,
        "resolved_at": iso(case.resolved_at), "outcome": case.outcome,
        "location": ({"lat": case.lat, "lon": case.lon, "acc": case.acc, "src": case.loc_src, "ts": case.loc_ts}
                     if case.lat is not None else None),
        "batt_pct": case.batt_pct, "heart_rate": case.heart_rate, "heart_rate_at": iso(case.heart_rate_at),
        "battery": battery_view(session.get(Device, case.device_id), case), "net_profile": case.net_profile,
        "flags": list(case.flags or []), "warnings": case_warnings(case),
        "wearer": wearer_view(wearer, today),
        # Where it is routed, how far it escalated, and a human label for the position.
        "centre_id": case.centre_id, "routed_at": iso(case.routed_at), "in_call_at": iso(case.in_call_at),
        "escalation_level": case.escalation_level or 0,
        "location_label": location_label(case.lat, case.lon,
                                         (wearer.home_lat, wearer.home_lon)
                                         if wearer and wearer.home_lat is not None and wearer.home_lon is not None
                                         else None, case.acc),
    }
    if case.kind == "geofence":
        view["zone"] = zone_view(session, case)
    if case.kind in WELFARE_REASON_KINDS:
        view["reason"] = reason_view(session, case)
    if case.centre_id is not None:
        centre = session.get(CallCentre, case.centre_id)
        view["centre"] = {"id": centre.id, "name": centre.name, "phone": centre.phone} if centre else None
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
        view["trail"] = [{"lat": p.lat, "lon": p.lon, "acc": p.acc, "src": p.src, "at": iso(p.received_at),
                          "ref": p.ref}
                         for p in points]
        commands = session.scalars(select(Command).where(Command.case_id == case.id).order_by(Command.created_at))
        view["commands"] = [{"cid": c.cid, "type": c.type, "status": c.status, "created_at": iso(c.created_at),
                             "acked_at": iso(c.acked_at), "stage": c.payload.get("stage")} for c in commands]
    if case.claimed_at is not None:
        view["time_to_claim_s"] = (case.claimed_at - case.opened_at).total_seconds()
    return view


def device_view(d: Device) -> dict[str, Any]:
    return {"id": d.id, "tenant_id": d.tenant_id, "wearer_id": d.wearer_id, "fw": d.fw,
            "cfg_version": d.cfg_version, "online": d.online, "last_seen": iso(d.last_seen),
            "batt_pct": d.batt_pct, "batt_at": iso(d.batt_at), "presence": d.presence,
            "heartbeat_s": d.heartbeat_s, "country": d.country,
            "vsim_profile": d.vsim_profile, "last_cell": d.last_cell, "created_at": iso(d.created_at),
            "secret_rotated_at": iso(d.secret_rotated_at), "protocol": d.protocol or "openpers"}


def tenant_view(t: Tenant) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "webhook_url": t.webhook_url, "missed_dose_to": t.missed_dose_to}


def centre_view(c: CallCentre, rank: int | None = None) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "phone": c.phone, "countries": c.countries or [], "areas": c.areas or [],
            "languages": c.languages or [], "hours": c.hours or [], "timezone": c.timezone, "rank": rank,
            "owned": None}


def operator_view(o: Operator) -> dict[str, Any]:
    return {"id": o.id, "tenant_id": o.tenant_id, "centre_id": o.centre_id, "username": o.username,
            "display_name": o.display_name, "role": o.role, "active": o.active, "last_seen_at": iso(o.last_seen_at)}


def wearer_admin_view(w: Wearer, today: date, contacts: list[Contact]) -> dict[str, Any]:
    return {**wearer_view(w, today), "tenant_id": w.tenant_id,
            "birth_date": w.birth_date.isoformat() if w.birth_date else None, "photo_url": w.photo_url,
            "timezone": w.timezone, "contacts": [contact_view(c, full=True) for c in contacts]}


def zone_view(session: Session, case: AlertCase) -> dict[str, Any] | None:
    """The zone a geofence case is about: its name, the crossing that opened the case
    (where and when), and when the watch came back, if it did while the case was open."""
    rows = session.execute(select(GeofenceEvent, Geofence.name).join(Geofence, Geofence.id == GeofenceEvent.geofence_id)
                           .where(GeofenceEvent.case_id == case.id).order_by(GeofenceEvent.id)).all()
    if not rows:
        return None
    first, name = rows[0]
    back = next((ev for ev, _ in rows[1:] if ev.kind != first.kind and ev.geofence_id == first.geofence_id), None)
    return {"geofence_id": first.geofence_id, "name": name, "event": first.kind, "at": iso(first.at),
            "lat": first.lat, "lon": first.lon, "back_inside_at": iso(back.at) if back else None}


def geofence_view(g: Geofence) -> dict[str, Any]:
    return {"id": g.id, "wearer_id": g.wearer_id, "name": g.name, "shape": g.shape, "lat": g.lat, "lon": g.lon,
            "radius_m": g.radius_m, "points": g.points, "schedule": g.schedule, "alert_on_exit": g.alert_on_exit,
            "alert_on_enter": g.alert_on_enter, "active": g.active}


def vsim_view(p: VsimProfilePool) -> dict[str, Any]:
    return {"id": p.id, "country": p.country, "name": p.name, "mccmnc": p.mccmnc, "apn": p.apn,
            "priority": p.priority, "cost": p.cost, "active": p.active}
