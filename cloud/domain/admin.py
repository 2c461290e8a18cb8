"""Administration of a tenant: its call centres and contract order, wearers and
contacts, devices (provisioning, secret rotation, config), operators,
geofences; and the supervisors' reports.

Every call takes the acting operator: the tenant is always the actor's, and
another tenant's object is reported absent (404), never "forbidden", so its
existence does not leak. Every change writes an AuditEntry."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.domain import configs
from cloud.domain.accounts import BrokerAuth, provision_device, rotate_device_secret
from cloud.domain.geo import validate_area, validate_windows, zone
from cloud.domain.security import hash_secret
from cloud.domain.uow import transaction
from cloud.domain.views import (centre_view, device_view, geofence_view, iso, operator_view, tenant_view,
                                vsim_view, wearer_admin_view)
from cloud.store.models import (AlertCase, AuditEntry, CallCentre, Contact, Contract, Device, Geofence, Operator,
                                Tenant, VsimProfilePool, Wearer)

ROLES = ("operator", "supervisor", "admin")


class AdminError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _page(s: Session, q, limit: int, offset: int, view) -> dict:
    total = s.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
    items = [view(x) for x in s.scalars(q.limit(limit).offset(offset))]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _actor(op: Operator) -> str:
    return f"operator:{op.username}"


class AdminService:
    def __init__(self, sm: sessionmaker[Session], clock, *, broker: BrokerAuth | None = None,
                 publisher: configs.ConfigPublisher | None = None, default_heartbeat_s: int = 3600,
                 default_number: str | None = None):
        self.sm, self.clock, self.broker, self.publisher = sm, clock, broker, publisher
        self.default_heartbeat_s, self.default_number = default_heartbeat_s, default_number

    # --- helpers -------------------------------------------------------------------
    def _audit(self, s: Session, op: Operator, action: str, target: str, detail: dict | None = None) -> None:
        s.add(AuditEntry(at=self.clock.now(), actor=_actor(op), action=action, tenant_id=op.tenant_id,
                         target=target, detail=detail))

    def _own(self, s: Session, model, key, op: Operator, what: str):
        obj = s.get(model, key)
        if obj is None or getattr(obj, "tenant_id", None) != op.tenant_id:
            raise AdminError(404, f"no such {what}")
        return obj

    def _own_centre(self, s: Session, op: Operator, centre_id: int, *, write: bool = False) -> CallCentre:
        c = s.get(CallCentre, centre_id)
        contracted = c is not None and s.get(Contract, (op.tenant_id, c.id)) is not None
        if c is None or not (contracted or c.owner_tenant_id == op.tenant_id):
            raise AdminError(404, "no such call centre")
        if write and c.owner_tenant_id != op.tenant_id:
            # A centre belongs to whoever created it. One without an owner (created by the
            # platform) is the tenant's to edit only while no other tenant contracts it.
            shared = s.scalar(select(func.count()).select_from(Contract).where(
                Contract.centre_id == c.id, Contract.tenant_id != op.tenant_id))
            if c.owner_tenant_id is not None or shared:
                raise AdminError(403, "this call centre is managed by another party")
        return c

    # --- tenant ----------------------------------------------------------------------
    def tenant(self, op: Operator) -> dict:
        with self.sm() as s:
            return tenant_view(s.get(Tenant, op.tenant_id))

    def update_tenant(self, op: Operator, changes: dict) -> dict:
        with transaction(self.sm) as tx:
            t = tx.session.get(Tenant, op.tenant_id)
            if changes.get("name") and tx.session.scalar(select(Tenant.id).where(Tenant.name == changes["name"],
                                                                                 Tenant.id != t.id)):
                raise AdminError(409, "another tenant has that name")
            for k in ("name", "webhook_url"):
                if k in changes:
                    setattr(t, k, changes[k])
            self._audit(tx.session, op, "tenant.updated", f"tenant:{t.id}", changes)
            return tenant_view(t)

    # --- call centres and contract ---------------------------------------------------------
    def _apply_centre(self, c: CallCentre, data: dict) -> None:
        try:
            if "areas" in data:
                c.areas = [validate_area(a) for a in (data["areas"] or [])]
            if "hours" in data:
                c.hours = validate_windows(data["hours"])
            if "timezone" in data and data["timezone"]:
                if zone(data["timezone"]).key != data["timezone"]:
                    raise ValueError(f"unknown time zone {data['timezone']!r}")
        except ValueError as exc:
            raise AdminError(422, str(exc)) from None
        for k in ("name", "phone", "timezone"):
            if k in data:
                setattr(c, k, data[k])
        if "countries" in data:
            c.countries = [x.upper() for x in data["countries"] or []]
        if "languages" in data:
            c.languages = [x.lower() for x in data["languages"] or []]

    def list_centres(self, op: Operator) -> list[dict]:
        with self.sm() as s:
            rows = s.execute(select(CallCentre, Contract.rank).join(Contract, Contract.centre_id == CallCentre.id)
                             .where(Contract.tenant_id == op.tenant_id).order_by(Contract.rank)).all()
            out = [{**centre_view(c, r), "owned": c.owner_tenant_id == op.tenant_id} for c, r in rows]
            seen = {c["id"] for c in out}
            for c in s.scalars(select(CallCentre).where(CallCentre.owner_tenant_id == op.tenant_id)):
                if c.id not in seen:
                    out.append({**centre_view(c, None), "owned": True})
            return out

    def create_centre(self, op: Operator, data: dict) -> dict:
        with transaction(self.sm) as tx:
            s = tx.session
            if s.scalar(select(CallCentre.id).where(CallCentre.name == data["name"])) is not None:
                raise AdminError(409, "a call centre with that name exists")
            c = CallCentre(name=data["name"], owner_tenant_id=op.tenant_id)
            self._apply_centre(c, data)
            s.add(c)
            s.flush()
            top = s.scalar(select(func.max(Contract.rank)).where(Contract.tenant_id == op.tenant_id))
            rank = 0 if top is None else top + 1
            if data.get("contract", True):
                s.add(Contract(tenant_id=op.tenant_id, centre_id=c.id, rank=rank))
            self._audit(s, op, "centre.created", f"centre:{c.id}", {k: v for k, v in data.items()})
            return {**centre_view(c, rank if data.get("contract", True) else None), "owned": True}

    def update_centre(self, op: Operator, centre_id: int, data: dict) -> dict:
        with transaction(self.sm) as tx:
            c = self._own_centre(tx.session, op, centre_id, write=True)
            self._apply_centre(c, data)
            self._audit(tx.session, op, "centre.updated", f"centre:{c.id}", data)
            ct = tx.session.get(Contract, (op.tenant_id, c.id))
            return {**centre_view(c, ct.rank if ct else None), "owned": True}

    def set_contract(self, op: Operator, centre_ids: list[int]) -> list[dict]:
        """The tenant's centres in order of preference (the routing fallback and escalation path)."""
        if len(set(centre_ids)) != len(centre_ids):
            raise AdminError(422, "a centre appears twice")
        with transaction(self.sm) as tx:
            s = tx.session
            for cid in centre_ids:
                self._own_centre(s, op, cid)
            for ct in s.scalars(select(Contract).where(Contract.tenant_id == op.tenant_id)):
                s.delete(ct)
            s.flush()
            for rank, cid in enumerate(centre_ids):
                s.add(Contract(tenant_id=op.tenant_id, centre_id=cid, rank=rank))
            self._audit(s, op, "contract.updated", f"tenant:{op.tenant_id}", {"centres": centre_ids})
        return self.list_centres(op)

    # --- wearers and contacts ----------------------------------------------------------------
    def _apply_wearer(self, w: Wearer, data: dict) -> None:
        for k in ("name", "birth_date", "language", "home_address", "home_lat", "home_lon", "medical_notes",
                  "photo_url", "timezone"):
            if k in data:
                setattr(w, k, data[k])
        if (w.home_lat is None) != (w.home_lon is None):
            raise AdminError(422, "home_lat and home_lon go together")

    def _replace_contacts(self, s: Session, w: Wearer, contacts: list[dict]) -> None:
        for c in s.scalars(select(Contact).where(Contact.wearer_id == w.id)):
            s.delete(c)
        s.flush()
        for rank, c in enumerate(contacts):
            s.add(Contact(wearer_id=w.id, rank=rank, name=c["name"], relation=c.get("relation"), phone=c["phone"],
                          email=c.get("email"), channels=c.get("channels")))

    def _wearer_out(self, s: Session, w: Wearer) -> dict:
        contacts = list(s.scalars(select(Contact).where(Contact.wearer_id == w.id).order_by(Contact.rank)))
        return wearer_admin_view(w, self.clock.now().date(), contacts)

    def list_wearers(self, op: Operator, *, q: str | None = None, limit: int = 50, offset: int = 0) -> dict:
        with self.sm() as s:
            stmt = select(Wearer).where(Wearer.tenant_id == op.tenant_id)
            if q:
                stmt = stmt.where(Wearer.name.ilike(f"%{q}%"))
            return _page(s, stmt.order_by(Wearer.name, Wearer.id), limit, offset, lambda w: self._wearer_out(s, w))

    def get_wearer(self, op: Operator, wearer_id: int) -> dict:
        with self.sm() as s:
            return self._wearer_out(s, self._own(s, Wearer, wearer_id, op, "wearer"))

    def create_wearer(self, op: Operator, data: dict) -> dict:
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

    def update_wearer(self, op: Operator, wearer_id: int, data: dict) -> dict:
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

    # --- devices ------------------------------------------------------------------------------
    def list_devices(self, op: Operator, *, presence: str | None = None, wearer_id: int | None = None,
                     limit: int = 50, offset: int = 0) -> dict:
        with self.sm() as s:
            stmt = select(Device).where(Device.tenant_id == op.tenant_id)
            if presence:
                stmt = stmt.where(Device.presence == presence)
            if wearer_id is not None:
                stmt = stmt.where(Device.wearer_id == wearer_id)
            return _page(s, stmt.order_by(Device.id), limit, offset, device_view)

    def get_device(self, op: Operator, device_id: str) -> dict:
        with self.sm() as s:
            d = self._own(s, Device, device_id, op, "device")
            latest = configs.latest_config(s, d.id)
            return {**device_view(d), "config": latest.body if latest else None,
                    "config_pending": bool(latest and (d.cfg_version or 0) < latest.version)}

    def provision(self, op: Operator, device_id: str | None, wearer_id: int | None) -> dict:
        try:
            dev = provision_device(self.sm, self.clock, op.tenant_id, device_id=device_id, wearer_id=wearer_id,
                                   actor=_actor(op), broker=self.broker)
        except ValueError as exc:
            status = 409 if "already exists" in str(exc) else 422
            raise AdminError(status, str(exc)) from None
        return {"id": dev.device_id, "secret": dev.secret}

    def rotate(self, op: Operator, device_id: str) -> dict:
        try:
            dev = rotate_device_secret(self.sm, self.clock, device_id, actor=_actor(op), tenant_id=op.tenant_id,
                                       broker=self.broker)
        except LookupError:
            raise AdminError(404, "no such device") from None
        return {"id": dev.device_id, "secret": dev.secret}

    def assign_device(self, op: Operator, device_id: str, wearer_id: int | None) -> dict:
        with transaction(self.sm) as tx:
            s = tx.session
            d = self._own(s, Device, device_id, op, "device")
            if wearer_id is not None:
                self._own(s, Wearer, wearer_id, op, "wearer")
            d.wearer_id = wearer_id
            self._audit(s, op, "device.assigned", f"device:{d.id}", {"wearer_id": wearer_id})
            return device_view(d)

    def push_config(self, op: Operator, device_id: str, changes: dict) -> dict:
        if self.publisher is None:
            raise AdminError(503, "no broker connection to publish configs")
        try:
            return configs.push_config(self.sm, self.clock, self.publisher, device_id, changes, actor=_actor(op),
                                       tenant_id=op.tenant_id, default_heartbeat_s=self.default_heartbeat_s,
                                       default_number=self.default_number)
        except LookupError:
            raise AdminError(404, "no such device") from None
        except configs.ConfigError as exc:
            raise AdminError(422, str(exc)) from None

    # --- operators ------------------------------------------------------------------------------
    def list_operators(self, op: Operator, *, centre_id: int | None = None, limit: int = 100,
                       offset: int = 0) -> dict:
        with self.sm() as s:
            stmt = select(Operator).where(Operator.tenant_id == op.tenant_id)
            if centre_id is not None:
                stmt = stmt.where(Operator.centre_id == centre_id)
            return _page(s, stmt.order_by(Operator.username), limit, offset, operator_view)

    def create_operator(self, op: Operator, data: dict) -> dict:
        if data.get("role", "operator") not in ROLES:
            raise AdminError(422, f"role must be one of {', '.join(ROLES)}")
        with transaction(self.sm) as tx:
            s = tx.session
            if data.get("centre_id") is not None:
                self._own_centre(s, op, data["centre_id"])
            if s.scalar(select(Operator.id).where(Operator.username == data["username"])) is not None:
                raise AdminError(409, "username taken")
            o = Operator(tenant_id=op.tenant_id, username=data["username"],
                         display_name=data.get("display_name") or data["username"],
                         password_hash=hash_secret(data["password"]), role=data.get("role", "operator"),
                         centre_id=data.get("centre_id"), active=True)
            s.add(o)
            s.flush()
            self._audit(s, op, "operator.created", f"operator:{o.id}",
                        {"username": o.username, "role": o.role, "centre_id": o.centre_id})
            return operator_view(o)

    def update_operator(self, op: Operator, operator_id: int, data: dict) -> dict:
        with transaction(self.sm) as tx:
            s = tx.session
            o = self._own(s, Operator, operator_id, op, "operator")
            if "role" in data and data["role"] not in ROLES:
                raise AdminError(422, f"role must be one of {', '.join(ROLES)}")
            if data.get("centre_id") is not None:
                self._own_centre(s, op, data["centre_id"])
            if o.id == op.id and (data.get("active") is False or data.get("role", o.role) != o.role):
                raise AdminError(409, "you cannot demote or deactivate yourself")
            for k in ("display_name", "role", "centre_id", "active"):
                if k in data:
                    setattr(o, k, data[k])
            if data.get("password"):
                o.password_hash = hash_secret(data["password"])
            self._audit(s, op, "operator.updated", f"operator:{o.id}",
                        {k: v for k, v in data.items() if k != "password"} | ({"password": "changed"}
                                                                              if data.get("password") else {}))
            return operator_view(o)

    # --- geofences --------------------------------------------------------------------------------
    def list_geofences(self, op: Operator, wearer_id: int) -> list[dict]:
        with self.sm() as s:
            self._own(s, Wearer, wearer_id, op, "wearer")
            return [geofence_view(g) for g in s.scalars(select(Geofence).where(Geofence.wearer_id == wearer_id)
                                                        .order_by(Geofence.id))]

    def create_geofence(self, op: Operator, wearer_id: int, data: dict) -> dict:
        try:
            area = validate_area({"type": data.get("shape"), **data})
            schedule = validate_windows(data.get("schedule"))
        except ValueError as exc:
            raise AdminError(422, str(exc)) from None
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

    # --- the vSIM pool (platform-wide; read by admins, managed by the platform) -------------------------
    def list_vsim(self, country: str | None = None) -> list[dict]:
        with self.sm() as s:
            stmt = select(VsimProfilePool).order_by(VsimProfilePool.country, VsimProfilePool.priority)
            if country:
                stmt = stmt.where(VsimProfilePool.country == country.upper())
            return [vsim_view(p) for p in s.scalars(stmt)]

    # --- supervision ---------------------------------------------------------------------------------
    def operator_presence(self, op: Operator, *, present_window_s: int = 120) -> list[dict]:
        """Who is on duty: last authenticated activity (throttled to 15 s), present
        within ``present_window_s``, and the open cases each one holds."""
        from datetime import timedelta
        from cloud.domain.lifecycle import OPEN_STATUSES
        now = self.clock.now()
        with self.sm() as s:
            held = dict(s.execute(select(AlertCase.claimed_by, func.count())
                                  .where(AlertCase.tenant_id == op.tenant_id, AlertCase.claimed_by.is_not(None),
                                         AlertCase.status.in_(OPEN_STATUSES))
                                  .group_by(AlertCase.claimed_by)).all())
            centres = dict(s.execute(select(CallCentre.id, CallCentre.name)).all())
            out = []
            for o in s.scalars(select(Operator).where(Operator.tenant_id == op.tenant_id)
                               .order_by(Operator.display_name, Operator.id)):
                seen = o.last_seen_at
                out.append({"id": o.id, "username": o.username, "display_name": o.display_name, "role": o.role,
                            "active": o.active, "centre": centres.get(o.centre_id) if o.centre_id else None,
                            "last_seen_at": iso(seen),
                            "present": bool(o.active and seen is not None
                                            and now - seen <= timedelta(seconds=present_window_s)),
                            "open_cases": held.get(o.id, 0)})
            return out

    def devices_needing_attention(self, op: Operator, *, low_battery_pct: int = 20, limit: int = 200) -> dict:
        """Devices not online (suspect, offline) or low on battery, worst first."""
        from sqlalchemy import or_
        with self.sm() as s:
            q = (select(Device, Wearer.name).outerjoin(Wearer, Wearer.id == Device.wearer_id)
                 .where(Device.tenant_id == op.tenant_id,
                        or_(Device.presence.in_(("suspect", "offline")), Device.batt_pct <= low_battery_pct)))
            rows = s.execute(q.order_by(Device.id).limit(limit)).all()
            rank = {"offline": 0, "suspect": 1}
            items = []
            for d, wearer_name in rows:
                problems = []
                if d.presence in rank:
                    problems.append(d.presence)
                if d.batt_pct is not None and d.batt_pct <= low_battery_pct:
                    problems.append("low_battery")
                items.append({**device_view(d), "wearer_name": wearer_name, "problems": problems})
            items.sort(key=lambda v: (rank.get(v["presence"], 2), v["batt_pct"] if v["batt_pct"] is not None else 101))
            return {"items": items, "low_battery_pct": low_battery_pct,
                    "counts": {"offline": sum(1 for v in items if v["presence"] == "offline"),
                               "suspect": sum(1 for v in items if v["presence"] == "suspect"),
                               "low_battery": sum(1 for v in items if "low_battery" in v["problems"])}}

    # --- audit and reports ---------------------------------------------------------------------------
    def audit(self, op: Operator, *, action: str | None = None, limit: int = 100, offset: int = 0) -> dict:
        with self.sm() as s:
            stmt = select(AuditEntry).where(AuditEntry.tenant_id == op.tenant_id)
            if action:
                stmt = stmt.where(AuditEntry.action.like(f"{action}%"))
            return _page(s, stmt.order_by(AuditEntry.id.desc()), limit, offset,
                         lambda a: {"id": a.id, "at": iso(a.at), "actor": a.actor, "action": a.action,
                                    "target": a.target, "detail": a.detail})

    def case_report(self, op: Operator, start: datetime, end: datetime) -> dict:
        """Cases opened in [start, end): counts by kind, by outcome, by centre, escalations."""
        with self.sm() as s:
            base = select(AlertCase).where(AlertCase.tenant_id == op.tenant_id, AlertCase.opened_at >= start,
                                           AlertCase.opened_at < end)
            cases = list(s.scalars(base))
        out: dict[str, Any] = {"from": iso(start), "to": iso(end), "cases": len(cases), "by_kind": {},
                               "by_outcome": {}, "by_centre": {}, "escalated": 0, "open": 0}
        for c in cases:
            out["by_kind"][c.kind] = out["by_kind"].get(c.kind, 0) + 1
            if c.outcome:
                out["by_outcome"][c.outcome] = out["by_outcome"].get(c.outcome, 0) + 1
            key = str(c.centre_id) if c.centre_id else "unrouted"
            out["by_centre"][key] = out["by_centre"].get(key, 0) + 1
            out["escalated"] += 1 if (c.escalation_level or 0) > 0 else 0
            out["open"] += 1 if c.status != "resolved" else 0
        return out


def add_vsim_profile(sm: sessionmaker[Session], clock, *, country: str, name: str, mccmnc: list[str],
                     apn: str | None = None, priority: int = 0, cost: float = 0, actor: str = "platform") -> dict:
    """The pool is the platform's, not a tenant's: managed by the platform operator (seed, scripts)."""
    if len(country) != 2 or not country.isalpha():
        raise ValueError("country is an ISO 3166 alpha-2 code")
    if not mccmnc or not all(x.isdigit() and len(x) in (5, 6) for x in mccmnc):
        raise ValueError("mccmnc is a list of 5-6 digit PLMN codes")
    with transaction(sm) as tx:
        p = VsimProfilePool(country=country.upper(), name=name, mccmnc=mccmnc, apn=apn, priority=priority,
                            cost=cost, active=True)
        tx.session.add(p)
        tx.session.flush()
        tx.session.add(AuditEntry(at=clock.now(), actor=actor, action="vsim.profile_added", target=f"vsim:{p.id}",
                                  detail={"country": p.country, "name": name}))
        return vsim_view(p)

