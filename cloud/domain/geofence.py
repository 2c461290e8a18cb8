"""Geofences per wearer: enter and exit events, and cases when it matters.

Each position of a device (GNSS or cell fix, from alerts and location reports)
is checked against its wearer's active geofences. A change of side is an
event (GeofenceEvent, live "geofence" event, metric). An exit from a geofence
with ``alert_on_exit``, during its ``schedule`` (in the wearer's time zone),
opens a case of kind "geofence": a child leaving school during school hours.

The first position only sets the state (no event): we cannot tell an exit
from a first sighting. A cell fix is too coarse for a school-sized zone, so
only a fix whose accuracy circle lies wholly on one side counts."""
from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from cloud import metrics
from cloud.domain.casefile import open_system_case, publish_case
from cloud.domain.geo import area_contains, distance_m, within_windows
from cloud.domain.ports import EventSink
from cloud.domain.uow import Tx
from cloud.store.models import Device, Geofence, GeofenceEvent, GeofenceState, Wearer

log = logging.getLogger("pers.geofence")


def as_area(g: Geofence) -> dict[str, Any]:
    if g.shape == "circle":
        return {"type": "circle", "lat": g.lat, "lon": g.lon, "radius_m": g.radius_m}
    return {"type": "polygon", "points": g.points or []}


def side(g: Geofence, lat: float, lon: float, acc: float | None) -> bool | None:
    """True inside, False outside, None when the accuracy circle straddles the edge."""
    inside = area_contains(as_area(g), lat, lon)
    if not acc or g.shape != "circle":
        # For polygons, a coarse fix (over 300 m) is not trusted at all.
        return None if (acc and acc > 300 and g.shape == "polygon") else inside
    if g.lat is None or g.lon is None or g.radius_m is None:
        return inside  # a circle is stored with its centre and radius (validate_area); area_contains needs them too
    d = distance_m((g.lat, g.lon), (lat, lon))
    if inside and d + acc <= g.radius_m:
        return True
    if not inside and d - acc >= g.radius_m:
        return False
    return None


def check(tx: Tx, device: Device, lat: float, lon: float, acc: float | None, now: datetime, mid: str,
          events: EventSink, *,
          present_window_s: int = 120) -> list[dict[str, Any]]:
    if device.wearer_id is None:
        return []
    s = tx.session
    fences = list(s.scalars(select(Geofence).where(Geofence.wearer_id == device.wearer_id,
                                                   Geofence.active.is_(True))))
    if not fences:
        return []
    wearer = s.get(Wearer, device.wearer_id)
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
        if wants and within_windows(g.schedule, wearer.timezone if wearer else None, now):
            case, _ = open_system_case(s, device, "geofence", mid, now, lat=lat, lon=lon,
                                       detail={"geofence_id": g.id, "geofence": g.name, "event": kind},
                                       present_window_s=present_window_s)
            ev.case_id = case.id
            publish_case(tx, events, case, now)
        info: dict[str, Any] = {"type": "geofence", "event": kind, "geofence_id": g.id, "geofence": g.name,
                                "device_id": device.id, "wearer_id": device.wearer_id, "lat": lat, "lon": lon,
                                "case_id": case.id if case else None}
        tenant_id = device.tenant_id
        tx.after_commit(functools.partial(events.publish, tenant_id, info))
        log.info("geofence crossed", extra={k: v for k, v in info.items() if k != "type"})
        out.append(info)
    return out

