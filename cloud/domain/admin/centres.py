"""The tenant and its call centres, and the contract: which centres, in which order."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from cloud.domain.admin.base import AdminBase
from cloud.domain.errors import Conflict, Forbidden, Invalid
from cloud.domain.geo import validate_area, validate_windows, zone
from cloud.domain.outbound import checked_url
from cloud.domain.phones import to_e164
from cloud.domain.uow import transaction
from cloud.domain.views import centre_view, tenant_view
from cloud.store.models import CallCentre, Contract, Operator, Tenant


class CentresAdmin(AdminBase):
    # --- tenant ----------------------------------------------------------------------
    def tenant(self, op: Operator) -> dict[str, Any]:
        with self.sm() as s:
            return tenant_view(s.get_one(Tenant, op.tenant_id))  # the operator's tenant: the foreign key keeps it

    def update_tenant(self, op: Operator, changes: dict[str, Any]) -> dict[str, Any]:
        if changes.get("webhook_url"):
            changes = {**changes, "webhook_url": checked_url(self.outbound, changes["webhook_url"], op)}
        with transaction(self.sm) as tx:
            t = tx.session.get_one(Tenant, op.tenant_id)
            if changes.get("name") and changes["name"] != t.name:
                # The same answer for every new name: "taken" would reveal other tenants' names,
                # and a rename to a look-alike would confuse the platform's lookups by name.
                raise Forbidden("the tenant's name is set by the platform operator")
            for k in ("name", "webhook_url", "missed_dose_to"):
                if k in changes and (k != "missed_dose_to" or changes[k]):
                    setattr(t, k, changes[k])
            self._audit(tx.session, op, "tenant.updated", f"tenant:{t.id}", changes)
            return tenant_view(t)

    # --- call centres and contract ---------------------------------------------------------
    def _apply_centre(self, c: CallCentre, data: dict[str, Any]) -> None:
        try:
            if "areas" in data:
                c.areas = [validate_area(a) for a in (data["areas"] or [])]
            if "hours" in data:
                c.hours = validate_windows(data["hours"])
            if "timezone" in data and data["timezone"]:
                if zone(data["timezone"]).key != data["timezone"]:
                    raise ValueError(f"unknown time zone {data['timezone']!r}")
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        for k in ("name", "timezone"):
            if k in data:
                setattr(c, k, data[k])
        if "phone" in data:
            c.phone = to_e164(data["phone"], self.phone_region, what="centre's phone number") if data["phone"] else None
        if "countries" in data:
            c.countries = [x.upper() for x in data["countries"] or []]
        if "languages" in data:
            c.languages = [x.lower() for x in data["languages"] or []]

    def list_centres(self, op: Operator) -> list[dict[str, Any]]:
        with self.sm() as s:
            rows = s.execute(select(CallCentre, Contract.rank).join(Contract, Contract.centre_id == CallCentre.id)
                             .where(Contract.tenant_id == op.tenant_id).order_by(Contract.rank)).all()
            out = [{**centre_view(c, r), "owned": c.owner_tenant_id == op.tenant_id} for c, r in rows]
            seen = {c["id"] for c in out}
            for c in s.scalars(select(CallCentre).where(CallCentre.owner_tenant_id == op.tenant_id)):
                if c.id not in seen:
                    out.append({**centre_view(c, None), "owned": True})
            return out

    def create_centre(self, op: Operator, data: dict[str, Any]) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            s = tx.session
            # Only the centres this tenant sees count: another tenant's centre of that name
            # must not be revealed by the answer (names are unique per tenant's view).
            contracted = select(Contract.centre_id).where(Contract.tenant_id == op.tenant_id)
            if s.scalar(select(CallCentre.id).where(
                    CallCentre.name == data["name"],
                    (CallCentre.owner_tenant_id == op.tenant_id) | CallCentre.id.in_(contracted))) is not None:
                raise Conflict("you already have a call centre with that name")
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

    def update_centre(self, op: Operator, centre_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            c = self._own_centre(tx.session, op, centre_id, write=True)
            self._apply_centre(c, data)
            self._audit(tx.session, op, "centre.updated", f"centre:{c.id}", data)
            ct = tx.session.get(Contract, (op.tenant_id, c.id))
            return {**centre_view(c, ct.rank if ct else None), "owned": True}

    def set_contract(self, op: Operator, centre_ids: list[int]) -> list[dict[str, Any]]:
        """The tenant's centres in order of preference (the routing fallback and escalation path)."""
        if len(set(centre_ids)) != len(centre_ids):
            raise Invalid("a centre appears twice")
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

