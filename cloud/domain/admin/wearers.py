"""Wearers, their contacts (the cascade, in order) and their geofences."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.domain.admin.base import AdminBase, page
from cloud.domain.errors import Invalid
from cloud.domain.geo import validate_area, validate_windows
from cloud.domain.phones import to_e164
from cloud.domain.uow import transaction
from cloud.domain.views import geofence_view, wearer_admin_view
from cloud.domain.zone_shape import polygon_problem, radius_problem
from cloud.store.models import Contact, Geofence, Operator, Wearer


class WearersAdmin(AdminBase):
    # --- wearers and contacts ----------------------------------------------------------------
    def _apply_wearer(self, w: Wearer, data: dict[str, Any]) -> None:
        for k in ("name", "birth_date", "language", "home_address", "home_lat", "home_lon", "medical_notes",
                  "photo_url", "timezone"):
            if k in data:
                setattr(w, k, data[k])
        if w.birth_date is not None and w.birth_date > self.clock.now().date():
            raise Invalid("the birth date is in the future")
        if (w.home_lat is None) != (w.home_lon is None):
            raise Invalid("home_lat and home_lon go together")

    def _replace_contacts(self, s: Session, w: Wearer, contacts: list[dict[str, Any]]) -> None:
        for c in s.scalars(select(Contact).where(Contact.wearer_id == w.id)):
            s.delete(c)
        s.flush()
        for rank, new in enumerate(contacts):
            s.add(Contact(wearer_id=w.id, rank=rank, name=new["name"], relation=new.get("relation"),
                          phone=to_e164(new["phone"], self.phone_region, what=f"phone number of {new['name']}"),
                          email=new.get("email"), channels=new.get("channels")))

    def _wearer_out(self, s: Session, w: Wearer) -> dict[str, Any]:
        contacts = list(s.scalars(select(Contact).where(Contact.wearer_id == w.id).order_by(Contact.rank)))
        return wearer_admin_view(w, self.clock.now().date(), contacts)

    def list_wearers(self, op: Operator, *, q: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        with self.sm() as s:
            stmt = select(Wearer).where(Wearer.tenant_id == op.tenant_id)
            if q:
                stmt = stmt.where(Wearer.name.ilike(f"%{q}%"))
            return page(s, stmt.order_by(Wearer.name, Wearer.id), limit, offset, lambda w: self._wearer_out(s, w))

    def get_wearer(self, op: Operator, wearer_id: int) -> dict[str, Any]:
        with self.sm() as s:
            return self._wearer_out(s, self._own(s, Wearer, wearer_id, op, "wearer"))

    def create_wearer(self, op: Operator, data: dict[str, Any]) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            s = tx.session
            w = Wearer(tenant_id=op.tenant_id, name=data["name"])
            self._apply_wearer(w, data)
            s.add(w)
            s.flush()
            self._replace_contacts(s, w, data.get("contacts") or [])
            s.flush()
            self._audit(s, op, "wearer.created", f"wearer:{w.id}", {"name": w.name})
            return self._wearer_out(s, w)

    def update_wearer(self, op: Operator, wearer_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            s = tx.session
            w = self._own(s, Wearer, wearer_id, op, "wearer")
            self._apply_wearer(w, data)
            if "contacts" in data and data["contacts"] is not None:
                self._replace_contacts(s, w, data["contacts"])
            s.flush()
            # Medical notes are sensitive: the audit says they changed, not what they say.
            self._audit(s, op, "wearer.updated", f"wearer:{w.id}", {"fields": sorted(data)})
            return self._wearer_out(s, w)

    # --- geofences --------------------------------------------------------------------------------
    def list_geofences(self, op: Operator, wearer_id: int) -> list[dict[str, Any]]:
        with self.sm() as s:
            self._own(s, Wearer, wearer_id, op, "wearer")
            return [geofence_view(g) for g in s.scalars(select(Geofence).where(Geofence.wearer_id == wearer_id)
                                                        .order_by(Geofence.id))]

    def create_geofence(self, op: Operator, wearer_id: int, data: dict[str, Any]) -> dict[str, Any]:
        try:
            area = validate_area({"type": data.get("shape"), **data})
            problem = (radius_problem(area["radius_m"]) if area["type"] == "circle"
                       else polygon_problem(area["points"]))
            if problem:
                raise ValueError(problem)
            schedule = validate_windows(data.get("schedule"))
            if schedule is not None and (not schedule or any(not w["days"] for w in schedule)):
                raise ValueError("a schedule needs at least one window with at least one day (no schedule: always)")
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        with transaction(self.sm) as tx:
            s = tx.session
            self._own(s, Wearer, wearer_id, op, "wearer")
            g = Geofence(tenant_id=op.tenant_id, wearer_id=wearer_id, name=data["name"], shape=area["type"],
                         lat=area.get("lat"), lon=area.get("lon"), radius_m=area.get("radius_m"),
                         points=area.get("points"), schedule=schedule,
                         alert_on_exit=bool(data.get("alert_on_exit")), alert_on_enter=bool(data.get("alert_on_enter")),
                         active=True)
            s.add(g)
            s.flush()
            self._audit(s, op, "geofence.created", f"geofence:{g.id}", {"wearer_id": wearer_id, "name": g.name})
            return geofence_view(g)

    def delete_geofence(self, op: Operator, geofence_id: int) -> None:
        with transaction(self.sm) as tx:
            g = self._own(tx.session, Geofence, geofence_id, op, "geofence")
            g.active = False  # kept: its past events refer to it
            self._audit(tx.session, op, "geofence.deleted", f"geofence:{g.id}")

