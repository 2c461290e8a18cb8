"""Geofences per wearer: enter and exit events, and cases when it matters.

Each position of a device (GNSS or cell fix, from alerts and location reports)
is checked against its wearer's active geofences. A change of side is an
event (GeofenceEvent, live "geofence" event, metric). An exit from a geofence
with ``alert_on_exit``, during its ``schedule`` (in the wearer's time zone),
opens a case of kind "geofence": a child leaving school during school hours.

The family contact (the first of the cascade) is notified when such a case
opens; coming back inside while it is open is written on the case.

The first position only sets the state (no event): we cannot tell an exit
from a first sighting. Only a fix whose accuracy circle lies wholly on one side,
by a margin, counts (zone_shape.side): a coarse cell fix near a school-sized
zone, or a watch walking along the fence, changes nothing."""
from __future__ import annotations

import functools
import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cloud import metrics
from cloud.domain import zone_shape
from cloud.domain.casefile import open_system_case, publish_case
from cloud.domain.geo import within_windows, zone
from cloud.domain.notify import record_outcome
from cloud.domain.ports import EventSink
from cloud.domain.uow import Tx
from cloud.store.models import AlertCase, CaseEvent, Contact, Device, Geofence, GeofenceEvent, GeofenceState, Wearer

if TYPE_CHECKING:
    from cloud.domain.notify import Notifier

log = logging.getLogger("pers.geofence")


def as_area(g: Geofence) -> dict[str, Any]:
    if g.shape == "circle":
        return {"type": "circle", "lat": g.lat, "lon": g.lon, "radius_m": g.radius_m}
    return {"type": "polygon", "points": g.points or []}


def side(g: Geofence, lat: float, lon: float, acc: float | None) -> bool | None:
    """True inside, False outside, None when the accuracy circle (widened by the
    hysteresis margin) straddles the edge: then the last side holds."""
    if g.shape == "circle" and (g.lat is None or g.lon is None or g.radius_m is None):
        return None  # a circle is stored with its centre and radius (validate_area)
    return zone_shape.side(as_area(g), lat, lon, acc)


def check(tx: Tx, device: Device, lat: float, lon: float, acc: float | None, now: datetime, mid: str,
          events: EventSink, *, present_window_s: int = 120,
          notifier: Notifier | None = None) -> list[dict[str, Any]]:
    if device.wearer_id is None:
        return []
    s = tx.session
    fences = list(s.scalars(select(Geofence).where(Geofence.wearer_id == device.wearer_id,
                                                   Geofence.active.is_(True))))
    if not fences:
        return []
    wearer = s.get(Wearer, device.wearer_id)
    tz = wearer.timezone if wearer else None
    out: list[dict[str, Any]] = []
    for g in fences:
        inside = side(g, lat, lon, acc)
        if inside is None:
            continue
        state = s.get(GeofenceState, (g.id, device.id))
        if state is None:
            s.add(GeofenceState(geofence_id=g.id, device_id=device.id, inside=inside, changed_at=now))
            continue
        if state.inside == inside:
            continue
        state.inside, state.changed_at = inside, now
        kind = "enter" if inside else "exit"
        ev = GeofenceEvent(geofence_id=g.id, device_id=device.id, kind=kind, at=now, lat=lat, lon=lon)
        s.add(ev)
        metrics.GEOFENCE_EVENTS.labels(kind).inc()
        wants = g.alert_on_exit if kind == "exit" else g.alert_on_enter
        case = None
        at_local = now.replace(tzinfo=UTC).astimezone(zone(tz)).strftime("%H:%M")
        if wants and within_windows(g.schedule, tz, now):
            case, opened = open_system_case(s, device, "geofence", mid, now, lat=lat, lon=lon,
                                            detail={"geofence_id": g.id, "geofence": g.name, "event": kind,
                                                    "at_local": at_local},
                                            present_window_s=present_window_s)
            ev.case_id = case.id
            publish_case(tx, events, case, now)
            if opened and notifier is not None:
                _notify_family(tx, notifier, case, wearer, g, kind, at_local, lat, lon)
        elif inside:
            case = _back_inside(tx, events, device, g, now, at_local, lat, lon)
            if case is not None:
                ev.case_id = case.id
        info: dict[str, Any] = {"type": "geofence", "event": kind, "geofence_id": g.id, "geofence": g.name,
                                "device_id": device.id, "wearer_id": device.wearer_id, "lat": lat, "lon": lon,
                                "case_id": case.id if case else None}
        tenant_id = device.tenant_id
        tx.after_commit(functools.partial(events.publish, tenant_id, info))
        log.info("geofence crossed", extra={k: v for k, v in info.items() if k != "type"})
        out.append(info)
    return out


def _back_inside(tx: Tx, events: EventSink, device: Device, g: Geofence, now: datetime, at_local: str,
                 lat: float, lon: float) -> AlertCase | None:
    """Coming back into a zone whose exit opened a case still open: the case says so."""
    s = tx.session
    case = s.scalar(select(AlertCase).join(GeofenceEvent, GeofenceEvent.case_id == AlertCase.id)
                    .where(GeofenceEvent.geofence_id == g.id, GeofenceEvent.device_id == device.id,
                           GeofenceEvent.kind == "exit", AlertCase.status != "resolved")
                    .order_by(GeofenceEvent.id.desc()).limit(1))
    if case is None:
        return None
    s.add(CaseEvent(case_id=case.id, at=now, actor="system", action="back_inside",
                    detail={"geofence_id": g.id, "geofence": g.name, "at_local": at_local, "lat": lat, "lon": lon}))
    publish_case(tx, events, case, now)
    return case


def family_message(wearer: Wearer | None, g: Geofence, kind: str, at_local: str, lat: float, lon: float,
                   case_id: int) -> str:
    who = wearer.name if wearer else "The watch"
    moved = f"left {g.name}" if kind == "exit" else f"entered {g.name}"
    return (f"{who} {moved} at {at_local} (position {lat:.5f}, {lon:.5f}). "
            f"The call centre has the alert (case {case_id}).")


def _notify_family(tx: Tx, notifier: Notifier, case: AlertCase, wearer: Wearer | None, g: Geofence, kind: str,
                   at_local: str, lat: float, lon: float) -> None:
    """The family contact (the first of the cascade) hears of it at once. The sending
    runs on its own thread after the commit: a slow web hook must never hold up the
    ingest of the next message, which may be an alarm. The notifier records
    contact_notified or contact_not_reached as the delivery went."""
    if wearer is None:
        return
    s = tx.session
    contact = s.scalar(select(Contact).where(Contact.wearer_id == wearer.id)
                       .order_by(Contact.rank, Contact.id).limit(1))
    if contact is None:
        return
    # The cascade goes on from the second contact, not the first again.
    case.cascade_next, case.cascade_at = max(case.cascade_next or 0, 1), case.opened_at
    if not notifier.routes_for(s, case, contact):
        # Nothing could carry it: say so on the case now, as Notify would.
        record_outcome(s, case, contact, {}, "system", case.opened_at)
        return
    message = family_message(wearer, g, kind, at_local, lat, lon, case.id)
    case_id, first = case.id, contact.id

    def send() -> None:
        try:
            notifier.notify_contact(None, case_id, first, message)
        except Exception:
            log.exception("geofence notification failed", extra={"case_id": case_id, "contact_id": first})

    tx.after_commit(lambda: threading.Thread(target=send, name="geofence-notify", daemon=True).start())
